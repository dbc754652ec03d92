//! Exact decimals with at most two places, kept as integers in hundredths: money in minor
//! units (paise, cents) and percentages in basis points. Never floats.

use std::fmt;

/// Largest hundredths value accepted: 10^12 minor units, far above any price, and small
/// enough that `qty_max × price_max` (10^6 × 10^12) fits in an `i64`.
pub const HUNDREDTHS_MAX: i64 = 1_000_000_000_000;
const _: () = assert!(HUNDREDTHS_MAX.checked_mul(1_000_000).is_some());

/// Parses `999`, `999.5`, `999.50`, `0.05`; refuses signs, exponents, a third decimal place.
pub fn parse_hundredths(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let invalid = || format!("must be a number with at most two decimals, got {text:?}");
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    if fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    if text.ends_with('.') {
        return Err(invalid());
    }
    let whole: i64 = whole.parse().map_err(|_| invalid())?;
    let fraction_hundredths: i64 = match fraction.len() {
        0 => 0,
        1 => i64::from(fraction.as_bytes()[0] - b'0') * 10,
        _ => fraction.parse().map_err(|_| invalid())?,
    };
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(fraction_hundredths))
        .filter(|v| *v <= HUNDREDTHS_MAX)
        .ok_or_else(|| format!("must be at most {}", Hundredths(HUNDREDTHS_MAX)))
}

/// Displays hundredths as a decimal with the shortest exact form: 99950 → `999.5`.
pub struct Hundredths(pub i64);

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (whole, fraction) = (abs / 100, abs % 100);
        match fraction {
            0 => write!(f, "{sign}{whole}"),
            f2 if f2 % 10 == 0 => write!(f, "{sign}{whole}.{}", f2 / 10),
            f2 => write!(f, "{sign}{whole}.{f2:02}"),
        }
    }
}

/// A percentage such as a tax rate, 0–100 with at most two decimals, in basis points.
pub fn parse_percent_bp(text: &str) -> Result<i64, String> {
    let bp = parse_hundredths(text)?;
    if bp > 10_000 {
        return Err("must be between 0 and 100".into());
    }
    Ok(bp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_and_one_or_two_decimals_exactly() {
        assert_eq!(parse_hundredths("999"), Ok(99900));
        assert_eq!(parse_hundredths("999.5"), Ok(99950));
        assert_eq!(parse_hundredths("999.50"), Ok(99950));
        assert_eq!(parse_hundredths("0.05"), Ok(5));
        assert_eq!(parse_hundredths("0"), Ok(0));
    }

    #[test]
    fn refuses_what_is_not_an_exact_two_place_decimal() {
        for bad in [
            "", "-1", "+1", "1e3", "1.234", ".5", "5.", "1,5", "abc", "1.2.3",
        ] {
            assert!(parse_hundredths(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_hundredths("99999999999999999999").is_err());
        assert!(parse_hundredths("10000000000000.01").is_err());
    }

    #[test]
    fn displays_shortest_exact_form() {
        assert_eq!(Hundredths(99950).to_string(), "999.5");
        assert_eq!(Hundredths(99905).to_string(), "999.05");
        assert_eq!(Hundredths(100).to_string(), "1");
        assert_eq!(Hundredths(0).to_string(), "0");
    }

    #[test]
    fn percent_is_bounded() {
        assert_eq!(parse_percent_bp("18"), Ok(1800));
        assert_eq!(parse_percent_bp("100"), Ok(10000));
        assert!(parse_percent_bp("100.01").is_err());
    }
}
