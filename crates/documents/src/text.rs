//! Text preparation for the builtin PDF fonts: character sanitising, width estimates,
//! wrapping and truncation. Everything here works in points (1/72 inch).

/// The two faces the documents use. Both are PDF standard-14 fonts, so no font file is
/// embedded, and both are WinAnsi-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Font {
    Regular,
    Bold,
}

/// Appended to text cut short. Three ASCII dots rather than U+2026, which is outside the
/// Latin-1 subset this crate restricts itself to.
pub(crate) const ELLIPSIS: &str = "...";

/// Maps one char to what the builtin fonts can show: printable Latin-1 passes, tabs and line
/// breaks become spaces, other control chars are dropped, everything else becomes `?`.
fn sanitize_char(c: char) -> Option<char> {
    match c {
        ' '..='~' | '\u{A0}'..='\u{FF}' => Some(c),
        '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}' => Some(' '),
        c if c.is_control() => None,
        // Zero-width and bidi formatting chars are invisible; a `?` for them is just noise.
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' => None,
        '\u{FEFF}' => None,
        _ => Some('?'),
    }
}

/// One line of text as the builtin fonts can render it, trimmed.
pub(crate) fn sanitize(s: &str) -> String {
    let cleaned: String = s.chars().filter_map(sanitize_char).collect();
    cleaned.trim().to_string()
}

/// Advance widths (1/1000 em) of Helvetica for ASCII 0x20..=0x7E, from the Adobe AFM.
#[rustfmt::skip]
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0..?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @..O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P.._
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // `..o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,      // p..~
];

/// Advance widths (1/1000 em) of Helvetica-Bold for ASCII 0x20..=0x7E, from the Adobe AFM.
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, // 0..?
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, // @..O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, // P.._
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, // `..o
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,      // p..~
];

/// Width of one char in 1/1000 em. Latin-1 letters get an upper bound instead of an exact
/// table: over-estimating only wraps a little early, never overlaps.
fn char_width(font: Font, c: char) -> u32 {
    let table = match font {
        Font::Regular => &HELVETICA,
        Font::Bold => &HELVETICA_BOLD,
    };
    match c {
        ' '..='~' => u32::from(table[c as usize - 0x20]),
        'Æ' | 'æ' | '¼' | '½' | '¾' => 1000,
        _ => 778,
    }
}

/// Width in points of `s` set in `font` at `size` points.
pub(crate) fn width(font: Font, size: f32, s: &str) -> f32 {
    let units: u32 = s.chars().map(|c| char_width(font, c)).sum();
    units as f32 * size / 1000.0
}

/// `s` cut so that it, plus an ellipsis when cut, fits `max_width`.
pub(crate) fn truncate(font: Font, size: f32, max_width: f32, s: &str) -> String {
    let s = sanitize(s);
    if width(font, size, &s) <= max_width {
        return s;
    }
    ellipsize(font, size, max_width, &s)
}

/// `s` with chars dropped from the end until `s + "..."` fits (or nothing is left of `s`).
fn ellipsize(font: Font, size: f32, max_width: f32, s: &str) -> String {
    let budget = max_width - width(font, size, ELLIPSIS);
    let mut out = String::new();
    let mut used = 0.0;
    for c in s.chars() {
        let w = char_width(font, c) as f32 * size / 1000.0;
        if used + w > budget {
            break;
        }
        used += w;
        out.push(c);
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
    out.push_str(ELLIPSIS);
    out
}

/// A single line fitted to `max_width`: the font shrinks from `size` down to `min_size`,
/// and only if that is not enough is the text truncated. Used for figures and codes,
/// where a smaller glyph is better than a silently shortened value.
pub(crate) fn fit(font: Font, size: f32, min_size: f32, max_width: f32, s: &str) -> (String, f32) {
    let s = sanitize(s);
    let at_one = width(font, 1.0, &s);
    if at_one * size <= max_width {
        return (s, size);
    }
    let shrunk = max_width / at_one;
    if shrunk >= min_size {
        return (s, shrunk);
    }
    (ellipsize(font, min_size, max_width, &s), min_size)
}

/// Accumulates wrapped lines and stops accepting them at the limit, so a 10,000-char
/// address costs a few lines of work, not the whole text.
struct Lines {
    font: Font,
    size: f32,
    max_width: f32,
    max_lines: usize,
    out: Vec<String>,
    full: bool,
}

impl Lines {
    fn push(&mut self, line: String) {
        if self.out.len() == self.max_lines {
            self.full = true;
        } else {
            self.out.push(line);
        }
    }

    fn fits(&self, s: &str) -> bool {
        width(self.font, self.size, s) <= self.max_width
    }

    /// Lays out one paragraph (already sanitised, so free of line breaks).
    fn paragraph(&mut self, para: &str) {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if self.full {
                return;
            }
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if self.fits(&candidate) {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                self.push(std::mem::take(&mut line));
            }
            if self.fits(word) {
                line = word.to_string();
                continue;
            }
            // A word wider than the column (an SKU, a URL): break it between chars. Each
            // piece keeps at least one char so a too-narrow column cannot loop forever.
            for c in word.chars() {
                let mut next = line.clone();
                next.push(c);
                if !line.is_empty() && !self.fits(&next) {
                    self.push(std::mem::take(&mut line));
                    if self.full {
                        return;
                    }
                    line.push(c);
                } else {
                    line = next;
                }
            }
        }
        if !line.is_empty() {
            self.push(line);
        }
    }
}

/// Wraps `text` to `max_width`, at most `max_lines` lines; line breaks in the text start new
/// lines, blank ones are dropped. When text is left over, the last line ends in "...".
pub(crate) fn wrap(
    font: Font,
    size: f32,
    max_width: f32,
    max_lines: usize,
    text: &str,
) -> Vec<String> {
    let mut lines = Lines {
        font,
        size,
        max_width,
        max_lines,
        out: Vec::new(),
        full: false,
    };
    for para in text.split('\n') {
        if lines.full {
            break;
        }
        lines.paragraph(&sanitize(para));
    }
    let full = lines.full;
    let mut out = lines.out;
    if full && let Some(last) = out.last_mut() {
        *last = ellipsize(font, size, max_width, last);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_latin1_and_replaces_the_rest() {
        assert_eq!(sanitize("Ānanya 李"), "?nanya ?");
        assert_eq!(sanitize("a\u{0}b\u{7}c\td\r\ne"), "abc d  e");
        assert_eq!(sanitize("Café ñ ü"), "Café ñ ü");
        assert_eq!(sanitize("\u{202E}x\u{200B}"), "x");
        assert_eq!(sanitize("  "), "");
    }

    #[test]
    fn widths_follow_the_tables() {
        // "Hello" in Helvetica: 722 + 556 + 222 + 222 + 556 = 2278 units.
        assert!((width(Font::Regular, 10.0, "Hello") - 22.78).abs() < 1e-3);
        assert!(width(Font::Bold, 10.0, "Hello") > width(Font::Regular, 10.0, "Hello"));
        assert_eq!(width(Font::Regular, 10.0, ""), 0.0);
    }

    #[test]
    fn wrap_fits_every_line_and_respects_the_limit() {
        let text = "the quick brown fox jumps over the lazy dog ".repeat(50);
        let lines = wrap(Font::Regular, 8.0, 100.0, 4, &text);
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| width(Font::Regular, 8.0, l) <= 100.0));
        assert!(lines[3].ends_with(ELLIPSIS));

        let short = wrap(Font::Regular, 8.0, 100.0, 4, "one\n\n two ");
        assert_eq!(short, vec!["one", "two"]);
    }

    #[test]
    fn wrap_breaks_long_words_and_survives_degenerate_widths() {
        let sku = "X".repeat(64);
        let lines = wrap(Font::Regular, 8.0, 60.0, 10, &sku);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), sku);

        // A column narrower than one glyph still terminates, one char per line.
        let lines = wrap(Font::Regular, 8.0, 0.0, 3, "abcdef");
        assert_eq!(lines.len(), 3);
        assert!(wrap(Font::Regular, 8.0, 100.0, 0, "abc").is_empty());
        assert!(wrap(Font::Regular, 8.0, 100.0, 3, "").is_empty());
    }

    #[test]
    fn truncate_and_fit() {
        assert_eq!(truncate(Font::Regular, 10.0, 1000.0, "short"), "short");
        let cut = truncate(Font::Regular, 10.0, 50.0, "a rather long piece of text");
        assert!(cut.ends_with(ELLIPSIS));
        assert!(width(Font::Regular, 10.0, &cut) <= 50.0);

        let (s, size) = fit(Font::Regular, 8.0, 4.0, 30.0, "123456.00");
        assert_eq!(s, "123456.00");
        assert!(size < 8.0 && width(Font::Regular, size, &s) <= 30.0 + 1e-3);
        let (s, size) = fit(Font::Regular, 8.0, 4.0, 10.0, "92233720368547758.07");
        assert_eq!(size, 4.0);
        assert!(s.ends_with(ELLIPSIS));
    }
}
