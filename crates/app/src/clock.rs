//! Time: stored as microseconds since the Unix epoch (UTC), shown as RFC 3339.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now_micros() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000).unwrap_or(i64::MAX)
}

pub fn rfc3339(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 time into microseconds.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let time = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| format!("must be an RFC 3339 time, got {text:?}"))?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000).map_err(|_| "is out of range".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339() {
        let micros = 1_764_331_200_123_456;
        assert_eq!(parse_rfc3339(&rfc3339(micros)), Ok(micros));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
