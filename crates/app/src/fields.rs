//! The bridge between edges and drafts: a JSON body and a CSV row both become named text
//! fields, so one validation serves both. Nested JSON objects flatten with a dot
//! (`ship_to.pincode`, `attributes.colour`), lists with an index (`lines[0].sku`,
//! `channels[1]`).

use std::collections::BTreeMap;

use oms_domain::validation::FieldError;
use serde_json::Value;

#[derive(Debug, Default, Clone)]
pub struct Fields {
    values: BTreeMap<String, String>,
    /// Names of the lists the body had, even empty ones.
    lists: std::collections::BTreeSet<String>,
}

impl Fields {
    /// Flattens a JSON object. Strings stay as they are, numbers keep their exact text,
    /// `null` is absent.
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
        fields.lists = list_names(map, "");
        if errors.is_empty() {
            Ok(fields)
        } else {
            Err(errors)
        }
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Fields {
        Fields {
            values: pairs.into_iter().collect(),
            lists: Default::default(),
        }
    }

    /// Whether the JSON body held a list `name`, even an empty one.
    pub fn has_list(&self, name: &str) -> bool {
        self.lists.contains(name)
    }

    /// Takes field `name` out.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// Field `name`, borrowed: for comparing and copying without a clone of its own.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
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

    /// The elements of list `name`, each as its own fields (`lines[0].sku` → `sku`), in
    /// index order; scalar elements come back under the empty name.
    pub fn items(&self, name: &str) -> Vec<Fields> {
        let mut items: BTreeMap<usize, Fields> = BTreeMap::new();
        let open = format!("{name}[");
        for (key, value) in &self.values {
            let Some(rest) = key.strip_prefix(&open) else {
                continue;
            };
            let Some((index, tail)) = rest.split_once(']') else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            let field = tail.strip_prefix('.').unwrap_or(tail).to_owned();
            items
                .entry(index)
                .or_default()
                .values
                .insert(field, value.clone());
        }
        items.into_values().collect()
    }

    /// The text elements of a list of scalars (`channels[0]`, `channels[1]`, …).
    pub fn texts(&self, name: &str) -> Vec<String> {
        self.items(name)
            .into_iter()
            .filter_map(|item| item.get(""))
            .collect()
    }

    /// Problems for every field that is neither in `known` nor under one of `open_prefixes`.
    /// List indexes match `[]` in `known`: `lines[].sku` allows `lines[7].sku`.
    pub fn unknown(&self, known: &[&str], open_prefixes: &[&str]) -> Vec<FieldError> {
        self.values
            .keys()
            .filter(|name| {
                !known.contains(&without_indexes(name).as_str())
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

/// Names of the top-level and nested lists of a JSON object.
fn list_names(
    map: &serde_json::Map<String, Value>,
    prefix: &str,
) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for (key, value) in map {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Array(_) => {
                names.insert(name);
            }
            Value::Object(inner) => names.extend(list_names(inner, &name)),
            _ => {}
        }
    }
    names
}

/// `lines[12].sku` → `lines[].sku`.
fn without_indexes(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_index = false;
    for c in name.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
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
            Value::Array(elements) => {
                for (index, element) in elements.iter().enumerate() {
                    let element_name = format!("{name}[{index}]");
                    match element {
                        Value::Object(inner) => flatten(inner, &element_name, out, errors),
                        Value::Array(_) => errors.push(FieldError {
                            field: element_name,
                            message: "must not be a list of lists".into(),
                        }),
                        scalar => {
                            let mut one = serde_json::Map::new();
                            one.insert(String::new(), scalar.clone());
                            flatten_scalar(&one, &element_name, out);
                        }
                    }
                }
            }
        }
    }
}

/// A scalar list element, stored under the element's own name.
fn flatten_scalar(
    one: &serde_json::Map<String, Value>,
    name: &str,
    out: &mut BTreeMap<String, String>,
) {
    if let Some(value) = one.get("") {
        match value {
            Value::String(text) => {
                out.insert(name.to_owned(), text.clone());
            }
            Value::Number(number) => {
                out.insert(name.to_owned(), number.to_string());
            }
            Value::Bool(flag) => {
                out.insert(name.to_owned(), flag.to_string());
            }
            _ => {}
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
    fn non_objects_and_lists_of_lists_are_refused() {
        assert!(Fields::from_json(&json!([1])).is_err());
        assert_eq!(
            Fields::from_json(&json!({"a": [[1]]})).unwrap_err()[0].field,
            "a[0]"
        );
    }

    #[test]
    fn lists_flatten_with_indexes_and_come_back_as_items() {
        let fields = Fields::from_json(&json!({
            "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 3}],
            "channels": ["MYNTRA", "AJIO"]
        }))
        .unwrap();
        let lines = fields.items("lines");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].get("sku").as_deref(), Some("B"));
        assert_eq!(fields.texts("channels"), ["MYNTRA", "AJIO"]);
        assert!(
            fields
                .unknown(&["lines[].sku", "lines[].qty", "channels[]"], &[])
                .is_empty()
        );
        assert_eq!(fields.unknown(&["lines[].sku", "channels[]"], &[]).len(), 2);
    }
}
