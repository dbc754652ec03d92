//! A client's settings: GRN tolerance, QC-fail reasons, SKU attributes, routing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::code::Code;
use crate::invoice::Invoicing;
use crate::validation::{FieldError, Problems};

pub const QC_FAIL_REASONS_MAX: usize = 100;
pub const SKU_ATTRIBUTES_MAX: usize = 50;
pub const ENUM_VALUES_MAX: usize = 500;
pub const ENUM_VALUE_CHARS_MAX: usize = 64;
pub const MAX_SPLITS_MAX: u32 = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSettings {
    /// Whether a GRN may receive more than the inward line ordered.
    pub excess_grn_allowed: bool,
    /// The reasons QC may fail a unit for; QC refuses any other.
    pub qc_fail_reasons: Vec<String>,
    /// The attributes a SKU of this client carries, checked on every SKU write.
    pub sku_attributes: Vec<SkuAttribute>,
    pub routing: Routing,
    /// The seller on this client's invoices and how they are numbered.
    #[serde(default)]
    pub invoicing: Invoicing,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            excess_grn_allowed: false,
            qc_fail_reasons: ["DAMAGED", "DEFECTIVE", "EXPIRED", "WRONG_ITEM"]
                .map(String::from)
                .to_vec(),
            sku_attributes: Vec::new(),
            routing: Routing::default(),
            invoicing: Invoicing::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuAttribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttributeKind,
    /// The allowed values of an `ENUM` attribute; empty for the other kinds.
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub required: bool,
    /// Shown beside order lines in the panel.
    #[serde(default)]
    pub displayed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttributeKind {
    Text,
    Number,
    Enum,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    pub strategy: RoutingStrategy,
    /// The most warehouses one order may be split across.
    pub max_splits: u32,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            strategy: RoutingStrategy::MinimizeShipments,
            max_splits: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoutingStrategy {
    MinimizeShipments,
    MinimizeDistance,
}

/// A change to settings: every field optional, absent fields keep their current value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    pub excess_grn_allowed: Option<bool>,
    pub qc_fail_reasons: Option<Vec<String>>,
    pub sku_attributes: Option<Vec<SkuAttribute>>,
    pub routing: Option<Routing>,
    pub invoicing: Option<Invoicing>,
}

impl ClientSettings {
    /// Applies `change` to these settings and validates the result whole.
    pub fn changed(&self, change: SettingsChange) -> Result<ClientSettings, Vec<FieldError>> {
        let next = ClientSettings {
            excess_grn_allowed: change.excess_grn_allowed.unwrap_or(self.excess_grn_allowed),
            qc_fail_reasons: change
                .qc_fail_reasons
                .unwrap_or_else(|| self.qc_fail_reasons.clone()),
            sku_attributes: change
                .sku_attributes
                .unwrap_or_else(|| self.sku_attributes.clone()),
            routing: change.routing.unwrap_or_else(|| self.routing.clone()),
            invoicing: change.invoicing.unwrap_or_else(|| self.invoicing.clone()),
        };
        next.validate()?;
        Ok(next)
    }

    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut problems = Problems::new();
        if self.qc_fail_reasons.len() > QC_FAIL_REASONS_MAX {
            problems.add(
                "qc_fail_reasons",
                format!("at most {QC_FAIL_REASONS_MAX} reasons"),
            );
        }
        check_unique_codes(&mut problems, "qc_fail_reasons", &self.qc_fail_reasons);
        if self.sku_attributes.len() > SKU_ATTRIBUTES_MAX {
            problems.add(
                "sku_attributes",
                format!("at most {SKU_ATTRIBUTES_MAX} attributes"),
            );
        }
        let names: Vec<String> = self.sku_attributes.iter().map(|a| a.name.clone()).collect();
        check_unique_codes(&mut problems, "sku_attributes.name", &names);
        for (index, attribute) in self.sku_attributes.iter().enumerate() {
            attribute.validate(&mut problems, &format!("sku_attributes[{index}]"));
        }
        if !(1..=MAX_SPLITS_MAX).contains(&self.routing.max_splits) {
            problems.add(
                "routing.max_splits",
                format!("must be between 1 and {MAX_SPLITS_MAX}"),
            );
        }
        self.invoicing.validate(&mut problems);
        problems.finish(|| ())
    }

    pub fn sku_attribute(&self, name: &str) -> Option<&SkuAttribute> {
        self.sku_attributes.iter().find(|a| a.name == name)
    }

    pub fn is_qc_fail_reason(&self, reason: &str) -> bool {
        self.qc_fail_reasons.iter().any(|r| r == reason)
    }
}

impl SkuAttribute {
    fn validate(&self, problems: &mut Problems, field: &str) {
        match self.kind {
            AttributeKind::Enum => {
                if self.values.is_empty() {
                    problems.add(format!("{field}.values"), "an ENUM needs its values");
                }
                if self.values.len() > ENUM_VALUES_MAX {
                    problems.add(
                        format!("{field}.values"),
                        format!("at most {ENUM_VALUES_MAX} values"),
                    );
                }
                let mut seen = BTreeSet::new();
                for value in &self.values {
                    let trimmed = value.trim();
                    if trimmed.is_empty() || trimmed.chars().count() > ENUM_VALUE_CHARS_MAX {
                        problems.add(
                            format!("{field}.values"),
                            format!("each value is 1 to {ENUM_VALUE_CHARS_MAX} characters"),
                        );
                    } else if trimmed != value {
                        problems.add(
                            format!("{field}.values"),
                            format!("{value:?} has leading or trailing spaces"),
                        );
                    } else if !seen.insert(value) {
                        problems.add(format!("{field}.values"), format!("{value:?} repeats"));
                    }
                }
            }
            AttributeKind::Text | AttributeKind::Number => {
                if !self.values.is_empty() {
                    problems.add(format!("{field}.values"), "only an ENUM lists values");
                }
            }
        }
    }
}

fn check_unique_codes(problems: &mut Problems, field: &str, codes: &[String]) {
    let mut seen = BTreeSet::new();
    for code in codes {
        if let Err(message) = Code::parse(code) {
            problems.add(field, format!("{code:?} {message}"));
        } else if !seen.insert(code.as_str()) {
            problems.add(field, format!("{code:?} repeats"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(name: &str, kind: AttributeKind, values: &[&str]) -> SkuAttribute {
        SkuAttribute {
            name: name.into(),
            kind,
            values: values.iter().map(|v| v.to_string()).collect(),
            required: false,
            displayed: false,
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ClientSettings::default().validate(), Ok(()));
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name() {
        let current = ClientSettings::default();
        let next = current
            .changed(SettingsChange {
                excess_grn_allowed: Some(true),
                ..SettingsChange::default()
            })
            .unwrap();
        assert!(next.excess_grn_allowed);
        assert_eq!(next.qc_fail_reasons, current.qc_fail_reasons);
        assert_eq!(next.routing, current.routing);
    }

    #[test]
    fn refuses_enum_without_values_values_on_text_repeats_and_bad_splits() {
        let settings = ClientSettings {
            qc_fail_reasons: vec!["DAMAGED".into(), "DAMAGED".into(), "bad reason".into()],
            sku_attributes: vec![
                attribute("colour", AttributeKind::Enum, &[]),
                attribute("size", AttributeKind::Text, &["S"]),
                attribute("size", AttributeKind::Number, &[]),
            ],
            routing: Routing {
                strategy: RoutingStrategy::MinimizeDistance,
                max_splits: 0,
            },
            ..ClientSettings::default()
        };
        let errors = settings.validate().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"qc_fail_reasons"));
        assert!(fields.contains(&"sku_attributes.name"));
        assert!(fields.contains(&"sku_attributes[0].values"));
        assert!(fields.contains(&"sku_attributes[1].values"));
        assert!(fields.contains(&"routing.max_splits"));
        assert_eq!(errors.len(), 6, "{errors:?}");
    }

    #[test]
    fn json_uses_the_api_words() {
        let json = serde_json::to_value(ClientSettings::default()).unwrap();
        assert_eq!(json["routing"]["strategy"], "MINIMIZE_SHIPMENTS");
        let attribute: SkuAttribute =
            serde_json::from_str(r#"{"name":"colour","type":"ENUM","values":["Red"]}"#).unwrap();
        assert_eq!(attribute.kind, AttributeKind::Enum);
        assert!(!attribute.required);
    }
}
