//! The bridge between edges and drafts: a JSON body and a CSV row both become named text
//! fields, so one validation serves both. Nested JSON objects flatten with a dot
//! (`ship_to.pincode`, `attributes.colour`).

use std::collections::BTreeMap;

use oms_domain::validation::FieldError;
use serde_json::Value;

#[derive(Debug, Default, Clone)]
pub struct Fields {
    values: BTreeMap<String, String>,
}

impl Fields {
    /// Flattens a JSON object. Strings stay as they are, numbers keep their exact text,
    /// `null` is absent; arrays are refused.
    pub fn from_json(body: &Value) -> Result<Fields, Vec<FieldError>> {
        let Value::Object(map) = body else {
            return Err(vec![FieldError {
                field: "body".into(),
                message: "must be a JSON object".into(),
            }]);
        };
        let mut fields = Fields::default();
        let mut errors = Vec::new();
        flatten(map, "", &mut fields.values, &mut errors);
        if errors.is_empty() {
            Ok(fields)
        } else {
            Err(errors)
        }
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Fields {
        Fields {
            values: pairs.into_iter().collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// Every field under `prefix.`, with the prefix removed, in name order.
    pub fn under(&self, prefix: &str) -> Vec<(String, String)> {
        let dotted = format!("{prefix}.");
        self.values
            .iter()
            .filter_map(|(name, value)| {
                name.strip_prefix(&dotted)
                    .map(|rest| (rest.to_owned(), value.clone()))
            })
            .collect()
    }

    /// Problems for every field that is neither in `known` nor under one of `open_prefixes`.
    pub fn unknown(&self, known: &[&str], open_prefixes: &[&str]) -> Vec<FieldError> {
        self.values
            .keys()
            .filter(|name| {
                !known.contains(&name.as_str())
                    && !open_prefixes.iter().any(|p| {
                        name.strip_prefix(p)
                            .is_some_and(|rest| rest.starts_with('.'))
                    })
            })
            .map(|name| FieldError {
                field: name.clone(),
                message: "is not a known field".into(),
            })
            .collect()
    }
}

fn flatten(
    map: &serde_json::Map<String, Value>,
    prefix: &str,
    out: &mut BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) {
    for (key, value) in map {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Null => {}
            Value::String(text) => {
                out.insert(name, text.clone());
            }
            Value::Number(number) => {
                out.insert(name, number.to_string());
            }
            Value::Bool(flag) => {
                out.insert(name, flag.to_string());
            }
            Value::Object(inner) => flatten(inner, &name, out, errors),
            Value::Array(_) => errors.push(FieldError {
                field: name,
                message: "must not be a list".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_flattens_with_dots_and_keeps_number_text() {
        let fields = Fields::from_json(&json!({
            "name": "Tee", "mrp": 999.5, "price": null,
            "attributes": {"colour": "Red", "chest_cm": 96}
        }))
        .unwrap();
        assert_eq!(fields.get("mrp").as_deref(), Some("999.5"));
        assert_eq!(fields.get("price"), None);
        assert_eq!(
            fields.under("attributes"),
            [
                ("chest_cm".into(), "96".into()),
                ("colour".into(), "Red".into())
            ]
        );
        assert!(fields.unknown(&["name", "mrp"], &["attributes"]).is_empty());
        assert_eq!(
            fields.unknown(&["name"], &[])[0].field,
            "attributes.chest_cm"
        );
    }

    #[test]
    fn arrays_and_non_objects_are_refused() {
        assert!(Fields::from_json(&json!([1])).is_err());
        assert_eq!(
            Fields::from_json(&json!({"a": [1]})).unwrap_err()[0].field,
            "a"
        );
    }
}
