//! Times on the wire: the stores keep milliseconds since the epoch, the
//! answers say RFC 3339.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `millis` since the epoch as RFC 3339 in UTC (`2026-12-02T14:05:09.123Z`);
/// empty for a time out of range.
pub fn rfc3339(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|moment| moment.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_become_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_684_309_123), "2025-12-02T14:05:09.123Z");
        assert_eq!(rfc3339(i64::MAX), "");
    }
}
