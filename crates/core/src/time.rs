//! The one timestamp format ragd puts on the wire: RFC 3339 in UTC with milliseconds and
//! `Z` (`2026-12-02T11:51:08.123Z`), for the HTTP layer and for library types that
//! serialise a time themselves.

use chrono::{DateTime, SecondsFormat, Utc};

/// `time` in the wire format.
#[must_use]
pub fn to_wire(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A `serialize_with` helper writing a time in the wire format.
///
/// # Errors
/// As the serializer's.
pub fn serialize<S: serde::Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&to_wire(*time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_and_z() {
        let time = DateTime::parse_from_rfc3339("2026-12-02T11:51:08.123456789+00:00")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(to_wire(time), "2026-12-02T11:51:08.123Z");
    }
}
