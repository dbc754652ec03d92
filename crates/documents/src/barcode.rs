//! Code128 for AWBs. Only code sets B (printable ASCII) and C (digit pairs) are used; set A
//! adds nothing but control chars, which an AWB never holds.

use barcoders::sym::code128::Code128;

// barcoders marks the code set with these chars: first one is the start code, later ones
// are switches.
const SET_B: char = 'Ɓ';
const SET_C: char = 'Ć';

/// The barcoders input for `data`, with code set C over long digit runs (two digits per
/// symbol), so a long numeric AWB yields a shorter, wider-moduled barcode. `None` when
/// `data` is empty or holds anything but printable ASCII: a barcode that does not scan back
/// to exactly the AWB must not be printed.
fn encoder_input(data: &str) -> Option<String> {
    if data.is_empty() || !data.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return None;
    }
    let bytes = data.as_bytes();
    // Split into maximal runs of digits / non-digits.
    let mut runs: Vec<&str> = Vec::new();
    let mut start = 0;
    for i in 1..=bytes.len() {
        if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
            runs.push(&data[start..i]);
            start = i;
        }
    }

    let mut out = String::new();
    let mut set = None;
    let mut switch = |out: &mut String, to: char| {
        if set != Some(to) {
            out.push(to);
            set = Some(to);
        }
    };
    let last = runs.len() - 1;
    for (i, run) in runs.iter().enumerate() {
        let digits = run.as_bytes()[0].is_ascii_digit();
        // The usual Code128 rule of thumb: set C pays off for 4+ digits at either end of
        // the data, 6+ in the middle (where it costs two switches).
        let threshold = if i == 0 || i == last { 4 } else { 6 };
        if !digits || run.len() < threshold {
            switch(&mut out, SET_B);
            out.push_str(run);
            continue;
        }
        // An odd digit out is set in B: after the pairs when B follows anyway, before
        // them when this run ends the data (B is then already current, unless it is the
        // whole data).
        let (before, pairs, after) = match (run.len() % 2 == 1, i == last && i != 0) {
            (false, _) => ("", *run, ""),
            (true, true) => (&run[..1], &run[1..], ""),
            (true, false) => ("", &run[..run.len() - 1], &run[run.len() - 1..]),
        };
        if !before.is_empty() {
            switch(&mut out, SET_B);
            out.push_str(before);
        }
        switch(&mut out, SET_C);
        out.push_str(pairs);
        if !after.is_empty() {
            switch(&mut out, SET_B);
            out.push_str(after);
        }
    }
    Some(out)
}

/// The Code128 modules for `data` (true = bar), start to stop pattern, without quiet zones;
/// `None` when `data` cannot be encoded exactly (see [`encoder_input`]).
pub(crate) fn code128_modules(data: &str) -> Option<Vec<bool>> {
    let input = encoder_input(data)?;
    let code = Code128::new(input).ok()?;
    Some(code.encode().into_iter().map(|m| m == 1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_code_sets() {
        assert_eq!(encoder_input("AWB-1").as_deref(), Some("ƁAWB-1"));
        assert_eq!(encoder_input("123456").as_deref(), Some("Ć123456"));
        assert_eq!(encoder_input("12345").as_deref(), Some("Ć1234Ɓ5"));
        assert_eq!(encoder_input("12").as_deref(), Some("Ɓ12"));
        assert_eq!(encoder_input("AB12345").as_deref(), Some("ƁAB1Ć2345"));
        assert_eq!(encoder_input("12345AB").as_deref(), Some("Ć1234Ɓ5AB"));
        assert_eq!(encoder_input("A12345B").as_deref(), Some("ƁA12345B"));
        assert_eq!(encoder_input("A1234567B").as_deref(), Some("ƁAĆ123456Ɓ7B"));
        assert_eq!(encoder_input(""), None);
        assert_eq!(encoder_input("AWB\n1"), None);
        assert_eq!(encoder_input("AWB-李"), None);
    }

    #[test]
    fn every_printable_ascii_char_encodes() {
        for c in (0x20u8..=0x7E).map(char::from) {
            let modules = code128_modules(&c.to_string()).expect("printable ASCII is set B");
            // Start, data and checksum symbols of 11 modules, then the 13-module stop.
            assert_eq!(modules.len(), 3 * 11 + 13, "{c:?}");
            assert!(modules[0] && *modules.last().unwrap());
        }
    }

    #[test]
    fn digits_pack_two_per_symbol() {
        let digits = "1".repeat(64);
        let modules = code128_modules(&digits).unwrap();
        assert_eq!(modules.len(), (1 + 32 + 1) * 11 + 13);
        // A single char is still a valid barcode (barcoders wants at least two input bytes).
        assert!(code128_modules("7").is_some());
    }
}
