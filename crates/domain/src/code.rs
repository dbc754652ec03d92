//! Codes: the caller's own identifiers for clients, warehouses, SKUs, orders and the rest.

use std::fmt;

pub const CODE_CHARS_MAX: usize = 64;

/// A validated code: 1–64 characters of ASCII letters, digits, `-`, `_` and `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Code(String);

impl Code {
    pub fn parse(text: &str) -> Result<Code, String> {
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if text.len() > CODE_CHARS_MAX {
            return Err(format!("must be at most {CODE_CHARS_MAX} characters"));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!(
                "may hold only letters, digits, '-', '_' and '.', found {bad:?}"
            ));
        }
        Ok(Code(text.to_owned()))
    }

    /// A required code field: absent or blank is "is required".
    pub fn required(value: Option<&str>) -> Result<Code, String> {
        match value.map(str::trim) {
            None | Some("") => Err("is required".into()),
            Some(text) => Code::parse(text),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_dash_underscore_dot() {
        assert!(Code::parse("SKU-1_a.B").is_ok());
        assert!(Code::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_empty_long_and_other_characters() {
        assert!(Code::parse("").is_err());
        assert!(Code::parse(&"x".repeat(65)).is_err());
        for bad in ["a b", "a/b", "ä", "a,b", "a'b", "=1+1"] {
            assert!(Code::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
