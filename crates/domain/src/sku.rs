//! SKUs: a client's products, with attributes checked against the client's configuration.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decimal::{parse_hundredths, parse_percent_bp};
use crate::settings::{AttributeKind, ClientSettings};
use crate::validation::{FieldError, Problems, optional_integer, optional_text, required_text};

pub const SKU_NAME_CHARS_MAX: usize = 200;
pub const ATTRIBUTE_TEXT_CHARS_MAX: usize = 256;
pub const WEIGHT_GRAMS_MAX: i64 = 1_000_000_000;

/// A SKU as it arrives: text values, from a JSON body or a CSV row alike.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SkuDraft {
    pub name: Option<String>,
    pub mrp: Option<String>,
    pub price: Option<String>,
    pub tax_rate: Option<String>,
    pub hsn: Option<String>,
    pub weight_grams: Option<String>,
    /// Attribute name → value as text; blank counts as absent.
    pub attributes: Vec<(String, String)>,
}

/// A validated SKU, money in minor units and the tax rate in basis points.
#[derive(Debug, Clone, PartialEq)]
pub struct Sku {
    pub name: String,
    pub mrp_minor: i64,
    pub price_minor: Option<i64>,
    pub tax_rate_bp: Option<i64>,
    pub hsn: Option<String>,
    pub weight_grams: Option<i64>,
    pub attributes: BTreeMap<String, AttributeValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Text(String),
    Number(f64),
}

impl SkuDraft {
    /// Checks every field and every attribute against `settings`, reporting all problems.
    pub fn validate(&self, settings: &ClientSettings) -> Result<Sku, Vec<FieldError>> {
        let mut problems = Problems::new();
        let name = problems.take(
            "name",
            required_text(self.name.as_deref(), SKU_NAME_CHARS_MAX),
        );
        let mrp_minor = problems.take("mrp", required_money(self.mrp.as_deref()));
        let price_minor = problems.take("price", optional_money(self.price.as_deref()));
        if let (Some(mrp), Some(Some(price))) = (mrp_minor, price_minor)
            && price > mrp
        {
            problems.add("price", "must not exceed mrp");
        }
        let tax_rate_bp = problems.take("tax_rate", optional_percent(self.tax_rate.as_deref()));
        let hsn = problems.take("hsn", optional_hsn(self.hsn.as_deref()));
        let weight_grams = problems.take(
            "weight_grams",
            optional_integer(self.weight_grams.as_deref(), 0, WEIGHT_GRAMS_MAX),
        );
        let attributes = self.validated_attributes(settings, &mut problems);
        problems.finish(|| Sku {
            name: name.unwrap_or_default(),
            mrp_minor: mrp_minor.unwrap_or_default(),
            price_minor: price_minor.flatten(),
            tax_rate_bp: tax_rate_bp.flatten(),
            hsn: hsn.flatten(),
            weight_grams: weight_grams.flatten(),
            attributes,
        })
    }

    fn validated_attributes(
        &self,
        settings: &ClientSettings,
        problems: &mut Problems,
    ) -> BTreeMap<String, AttributeValue> {
        let mut values = BTreeMap::new();
        let mut given = Vec::new();
        for (name, raw) in &self.attributes {
            let field = format!("attributes.{name}");
            let Some(attribute) = settings.sku_attribute(name) else {
                problems.add(field, "is not one of the client's SKU attributes");
                continue;
            };
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            given.push(name.as_str());
            let value = match attribute.kind {
                AttributeKind::Text => optional_text(Some(raw), ATTRIBUTE_TEXT_CHARS_MAX)
                    .map(|text| AttributeValue::Text(text.unwrap_or_default())),
                AttributeKind::Number => raw
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .map(AttributeValue::Number)
                    .ok_or_else(|| format!("must be a number, got {raw:?}")),
                AttributeKind::Enum => {
                    if attribute.values.iter().any(|v| v == raw) {
                        Ok(AttributeValue::Text(raw.to_owned()))
                    } else {
                        Err(format!(
                            "must be one of {}, got {raw:?}",
                            attribute.values.join(", ")
                        ))
                    }
                }
            };
            if let Some(value) = problems.take(&field, value)
                && values.insert(name.clone(), value).is_some()
            {
                problems.add(field, "is given twice");
            }
        }
        for attribute in settings.sku_attributes.iter().filter(|a| a.required) {
            if !given.contains(&attribute.name.as_str()) {
                problems.add(format!("attributes.{}", attribute.name), "is required");
            }
        }
        values
    }
}

fn required_money(text: Option<&str>) -> Result<i64, String> {
    optional_money(text)?.ok_or_else(|| "is required".to_owned())
}

fn optional_money(text: Option<&str>) -> Result<Option<i64>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse_hundredths(text).map(Some),
    }
}

fn optional_percent(text: Option<&str>) -> Result<Option<i64>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse_percent_bp(text).map(Some),
    }
}

/// HSN: the Harmonised System code printed on invoices, 4 to 8 digits.
fn optional_hsn(text: Option<&str>) -> Result<Option<String>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if (4..=8).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(text.to_owned()))
        }
        Some(text) => Err(format!("must be 4 to 8 digits, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SkuAttribute;

    fn settings() -> ClientSettings {
        ClientSettings {
            sku_attributes: vec![
                SkuAttribute {
                    name: "colour".into(),
                    kind: AttributeKind::Enum,
                    values: vec!["Red".into(), "Blue".into()],
                    required: true,
                    displayed: true,
                },
                SkuAttribute {
                    name: "chest_cm".into(),
                    kind: AttributeKind::Number,
                    values: vec![],
                    required: false,
                    displayed: false,
                },
            ],
            ..ClientSettings::default()
        }
    }

    fn draft() -> SkuDraft {
        SkuDraft {
            name: Some("Tee".into()),
            mrp: Some("999.5".into()),
            price: Some("899".into()),
            tax_rate: Some("12".into()),
            hsn: Some("6109".into()),
            weight_grams: Some("180".into()),
            attributes: vec![
                ("colour".into(), "Red".into()),
                ("chest_cm".into(), "96.5".into()),
            ],
        }
    }

    #[test]
    fn a_complete_sku_validates_into_minor_units() {
        let sku = draft().validate(&settings()).unwrap();
        assert_eq!(sku.mrp_minor, 99950);
        assert_eq!(sku.price_minor, Some(89900));
        assert_eq!(sku.tax_rate_bp, Some(1200));
        assert_eq!(sku.attributes["colour"], AttributeValue::Text("Red".into()));
        assert_eq!(sku.attributes["chest_cm"], AttributeValue::Number(96.5));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let bad = SkuDraft {
            name: None,
            mrp: Some("9.999".into()),
            price: None,
            tax_rate: Some("101".into()),
            hsn: Some("61".into()),
            weight_grams: Some("-1".into()),
            attributes: vec![
                ("chest_cm".into(), "wide".into()),
                ("fabric".into(), "cotton".into()),
            ],
        };
        let errors = bad.validate(&settings()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "mrp",
                "tax_rate",
                "hsn",
                "weight_grams",
                "attributes.chest_cm",
                "attributes.fabric",
                "attributes.colour",
            ]
        );
    }

    #[test]
    fn enum_values_must_be_listed_and_price_may_not_exceed_mrp() {
        let mut sku = draft();
        sku.attributes[0].1 = "Green".into();
        sku.price = Some("1000".into());
        let errors = sku.validate(&settings()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].field, "price");
        assert!(errors[1].message.contains("Red, Blue"));
    }
}
