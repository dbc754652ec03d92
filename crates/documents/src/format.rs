//! Figures as printed.

/// Minor units (paise, cents) as a decimal amount with two places: `123450` → `"1234.50"`,
/// `-5` → `"-0.05"`. No grouping separators, so the figure reads the same in any locale.
pub fn format_money(minor: i64) -> String {
    // `unsigned_abs` because `-i64::MIN` overflows.
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A tax rate in basis points as a percentage without trailing zeros: `1800` → `"18%"`,
/// `1250` → `"12.5%"`, `25` → `"0.25%"`.
pub fn format_tax_rate(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let abs = bp.unsigned_abs();
    let (whole, frac) = (abs / 100, abs % 100);
    match frac {
        0 => format!("{sign}{whole}%"),
        f if f % 10 == 0 => format!("{sign}{whole}.{}%", f / 10),
        f => format!("{sign}{whole}.{f:02}%"),
    }
}

/// Grams as kilograms with three places: `1250` → `"1.250 kg"`.
pub(crate) fn format_weight(grams: i64) -> String {
    let sign = if grams < 0 { "-" } else { "" };
    let abs = grams.unsigned_abs();
    format!("{sign}{}.{:03} kg", abs / 1000, abs % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money() {
        assert_eq!(format_money(123450), "1234.50");
        assert_eq!(format_money(0), "0.00");
        assert_eq!(format_money(7), "0.07");
        assert_eq!(format_money(-5), "-0.05");
        assert_eq!(format_money(-118000), "-1180.00");
        assert_eq!(format_money(i64::MIN), "-92233720368547758.08");
        assert_eq!(format_money(i64::MAX), "92233720368547758.07");
    }

    #[test]
    fn tax_rate() {
        assert_eq!(format_tax_rate(1800), "18%");
        assert_eq!(format_tax_rate(1250), "12.5%");
        assert_eq!(format_tax_rate(25), "0.25%");
        assert_eq!(format_tax_rate(0), "0%");
        assert_eq!(format_tax_rate(-500), "-5%");
        assert_eq!(format_tax_rate(i64::MIN), "-92233720368547758.08%");
    }

    #[test]
    fn weight() {
        assert_eq!(format_weight(1250), "1.250 kg");
        assert_eq!(format_weight(5), "0.005 kg");
        assert_eq!(format_weight(-1), "-0.001 kg");
    }
}
