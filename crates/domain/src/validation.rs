//! Field-level problems, collected whole so a caller sees every mistake at once.

use serde::Serialize;

/// One invalid field of a request body or an upload row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Collects every problem of one input instead of stopping at the first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result` under `field` and returns its value, if any.
    pub fn take<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// `Ok(value)` when nothing was recorded, else every recorded problem.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self.0)
        }
    }
}

/// Text that must be present and non-blank, at most `max_chars` long; trimmed.
pub fn required_text(value: Option<&str>, max_chars: usize) -> Result<String, String> {
    match value.map(str::trim) {
        None | Some("") => Err("is required".into()),
        Some(text) => bounded_text(text, max_chars),
    }
}

/// Optional text: blank counts as absent; trimmed; at most `max_chars` long.
pub fn optional_text(value: Option<&str>, max_chars: usize) -> Result<Option<String>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => bounded_text(text, max_chars).map(Some),
    }
}

fn bounded_text(text: &str, max_chars: usize) -> Result<String, String> {
    if text.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_owned())
}

/// An optional whole number within `min..=max`, given as decimal text.
pub fn optional_integer(value: Option<&str>, min: i64, max: i64) -> Result<Option<i64>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => {
            let number: i64 = text
                .parse()
                .map_err(|_| format!("must be a whole number, got {text:?}"))?;
            if number < min || number > max {
                return Err(format!("must be between {min} and {max}"));
            }
            Ok(Some(number))
        }
    }
}

/// An optional finite number within `min..=max`, given as decimal text.
pub fn optional_float(value: Option<&str>, min: f64, max: f64) -> Result<Option<f64>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => {
            let number: f64 = text
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| format!("must be a number, got {text:?}"))?;
            if number < min || number > max {
                return Err(format!("must be between {min} and {max}"));
            }
            Ok(Some(number))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_text_refuses_missing_and_blank_and_trims() {
        assert_eq!(required_text(None, 10), Err("is required".into()));
        assert_eq!(required_text(Some("   "), 10), Err("is required".into()));
        assert_eq!(required_text(Some(" Tee "), 10), Ok("Tee".into()));
        assert!(required_text(Some("abcdefghijk"), 10).is_err());
        assert!(required_text(Some("a\u{0}b"), 10).is_err());
    }

    #[test]
    fn optional_integer_checks_bounds() {
        assert_eq!(optional_integer(Some(""), 0, 5), Ok(None));
        assert_eq!(optional_integer(Some("5"), 0, 5), Ok(Some(5)));
        assert!(optional_integer(Some("6"), 0, 5).is_err());
        assert!(optional_integer(Some("1.5"), 0, 5).is_err());
    }

    #[test]
    fn problems_collect_every_error() {
        let mut problems = Problems::new();
        assert_eq!(problems.take("a", Ok::<_, String>(1)), Some(1));
        assert_eq!(problems.take::<i32>("b", Err("bad".into())), None);
        problems.add("c", "worse");
        let errors = problems.finish(|| ()).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "b");
        assert_eq!(errors[1].message, "worse");
    }
}
