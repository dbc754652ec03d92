//! Invoicing: the seller details a client prints on its invoices, invoice numbers, and the
//! tax arithmetic of an invoice line.

use serde::{Deserialize, Serialize};

use crate::validation::{Problems, optional_text};

pub const PREFIX_CHARS_MAX: usize = 16;
pub const LEGAL_NAME_CHARS_MAX: usize = 200;
pub const ADDRESS_CHARS_MAX: usize = 500;
/// Digits of the sequence number as printed (`INV-000042`); larger numbers print whole.
pub const NUMBER_DIGITS: usize = 6;

/// What a client's invoices say about the seller, and how they are numbered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invoicing {
    /// The seller's registered name; the client's name when absent.
    #[serde(default)]
    pub legal_name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub pincode: Option<String>,
    /// Tax registration (GSTIN).
    #[serde(default)]
    pub gstin: Option<String>,
    /// Printed before the number: `INV-` gives `INV-000001`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// ISO 4217 code printed beside amounts.
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_prefix() -> String {
    "INV-".into()
}

fn default_currency() -> String {
    "INR".into()
}

impl Default for Invoicing {
    fn default() -> Self {
        Invoicing {
            legal_name: None,
            address: None,
            pincode: None,
            gstin: None,
            prefix: default_prefix(),
            currency: default_currency(),
        }
    }
}

impl Invoicing {
    pub fn validate(&self, problems: &mut Problems) {
        let texts = [
            (
                "invoicing.legal_name",
                &self.legal_name,
                LEGAL_NAME_CHARS_MAX,
            ),
            ("invoicing.address", &self.address, ADDRESS_CHARS_MAX),
            ("invoicing.pincode", &self.pincode, 16),
            ("invoicing.gstin", &self.gstin, 20),
        ];
        for (field, value, max) in texts {
            problems.take(field, optional_text(value.as_deref(), max));
        }
        let prefix_ok = self.prefix.chars().count() <= PREFIX_CHARS_MAX
            && self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
        if !prefix_ok {
            problems.add(
                "invoicing.prefix",
                format!("at most {PREFIX_CHARS_MAX} letters, digits, '-', '_', '.' or '/'"),
            );
        }
        if !(self.currency.len() == 3 && self.currency.chars().all(|c| c.is_ascii_uppercase())) {
            problems.add(
                "invoicing.currency",
                "must be a three-letter ISO code such as INR",
            );
        }
    }

    /// The invoice number as printed for sequence number `sequence`.
    pub fn number(&self, sequence: i64) -> String {
        format!("{}{sequence:0width$}", self.prefix, width = NUMBER_DIGITS)
    }
}

/// The amounts of one invoice line: prices are charged tax included, so the tax is the
/// part of the gross that the rate accounts for, rounded half up to the minor unit, and
/// the taxable value is the rest. The three always add up exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineAmounts {
    pub taxable_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
}

pub fn line_amounts(unit_price_minor: i64, qty: i64, tax_rate_bp: i64) -> LineAmounts {
    let total = i128::from(unit_price_minor) * i128::from(qty);
    let rate = i128::from(tax_rate_bp.clamp(0, 10_000));
    // tax = total × rate / (10000 + rate), rounded half up.
    let denominator = 10_000 + rate;
    let tax = (2 * total * rate + denominator) / (2 * denominator);
    let clamp = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    LineAmounts {
        taxable_minor: clamp(total - tax),
        tax_minor: clamp(tax),
        total_minor: clamp(total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tax_is_the_included_part_and_the_parts_add_up() {
        // 1180.00 at 18% holds 180.00 of tax.
        assert_eq!(
            line_amounts(118_000, 1, 1800),
            LineAmounts {
                taxable_minor: 100_000,
                tax_minor: 18_000,
                total_minor: 118_000
            }
        );
        // 499.50 × 3 at 12%: 1498.50 gross; tax 160.55 (160.553… rounds down).
        let a = line_amounts(49_950, 3, 1200);
        assert_eq!(a.total_minor, 149_850);
        assert_eq!(a.tax_minor, 16_055);
        assert_eq!(a.taxable_minor + a.tax_minor, a.total_minor);
        // No rate, no tax.
        assert_eq!(line_amounts(999, 2, 0).tax_minor, 0);
    }

    #[test]
    fn rounding_is_half_up_and_sums_hold_for_every_small_case() {
        // 0.05 at 5%: 5 × 500 / 10500 = 0.24 → 0.
        assert_eq!(line_amounts(5, 1, 500).tax_minor, 0);
        // 0.21 at 5%: 21 × 500 / 10500 = 1.0 → 1.
        assert_eq!(line_amounts(21, 1, 500).tax_minor, 1);
        for price in 0..300 {
            for rate in [0, 250, 500, 1200, 1800, 2800] {
                let a = line_amounts(price, 7, rate);
                assert_eq!(a.taxable_minor + a.tax_minor, a.total_minor);
                assert!(a.tax_minor >= 0 && a.tax_minor <= a.total_minor);
            }
        }
    }

    #[test]
    fn numbers_carry_the_prefix_and_pad_to_six_digits() {
        let invoicing = Invoicing::default();
        assert_eq!(invoicing.number(42), "INV-000042");
        assert_eq!(invoicing.number(1_234_567), "INV-1234567");
    }

    #[test]
    fn bad_prefix_currency_and_long_texts_are_refused() {
        let invoicing = Invoicing {
            prefix: "INV 2026".into(),
            currency: "rupees".into(),
            address: Some("x".repeat(ADDRESS_CHARS_MAX + 1)),
            ..Invoicing::default()
        };
        let mut problems = Problems::new();
        invoicing.validate(&mut problems);
        let fields: Vec<String> = problems.into_vec().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "invoicing.address",
                "invoicing.prefix",
                "invoicing.currency"
            ]
        );
    }
}
