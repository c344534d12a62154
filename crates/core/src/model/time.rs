//! Event time. CONTRACT.md accepts RFC 3339 with an offset or integer epoch milliseconds;
//! internally every timestamp is epoch milliseconds, and output is rendered at a fixed,
//! configured UTC offset so that replay is byte-for-byte reproducible.
use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone};

/// Epoch milliseconds of event time. Only the engine's watermark ever advances it.
pub type EventTime = i64;

/// The latest instant `chrono` can render in four-digit years; anything beyond is bad input.
const MAX_MS: i64 = 253_402_300_799_999;

/// Parses RFC 3339 (`2026-11-28T21:15:30.120+08:00`, `...Z`) into epoch milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<EventTime> {
    let ts = DateTime::parse_from_rfc3339(s).ok()?.timestamp_millis();
    (0..=MAX_MS).contains(&ts).then_some(ts)
}

/// Accepts epoch milliseconds in the range a four-digit-year date can express.
pub fn valid_epoch_ms(ms: i64) -> Option<EventTime> {
    (0..=MAX_MS).contains(&ms).then_some(ms)
}

/// A fixed UTC offset for rendering timestamps (e.g. `+08:00`, China Standard Time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcOffset(FixedOffset);

impl UtcOffset {
    pub fn from_seconds(seconds: i32) -> Option<Self> {
        FixedOffset::east_opt(seconds).map(UtcOffset)
    }

    /// Parses `+08:00`, `-05:30` or `Z`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "Z" {
            return Self::from_seconds(0);
        }
        let (sign, rest) = match s.as_bytes().first()? {
            b'+' => (1, &s[1..]),
            b'-' => (-1, &s[1..]),
            _ => return None,
        };
        let (h, m) = rest.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let h: i32 = h.parse().ok()?;
        let m: i32 = m.parse().ok()?;
        if h > 23 || m > 59 {
            return None;
        }
        Self::from_seconds(sign * (h * 3600 + m * 60))
    }

    /// Seconds east of UTC.
    pub fn seconds(self) -> i32 {
        self.0.local_minus_utc()
    }

    pub fn china_standard_time() -> Self {
        UtcOffset(FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset"))
    }
}

/// Renders epoch milliseconds as RFC 3339 with milliseconds at the given offset.
pub fn format_rfc3339(ms: EventTime, offset: UtcOffset) -> String {
    match offset.0.timestamp_millis_opt(ms).single() {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, false),
        // Only reachable for values the decoder already refuses; keep output total.
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_agree() {
        let a = parse_rfc3339_ms("2026-11-28T21:15:30.120+08:00").unwrap();
        let b = parse_rfc3339_ms("2026-11-28T13:15:30.120Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, 1_795_871_730_120);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_rfc3339_ms("2026-11-28 21:15:30"), None);
        assert_eq!(
            parse_rfc3339_ms("2026-11-28T21:15:30"),
            None,
            "offset is required"
        );
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z"), None);
        assert_eq!(valid_epoch_ms(-1), None);
        assert_eq!(valid_epoch_ms(MAX_MS + 1), None);
    }

    #[test]
    fn formats_at_offset() {
        let ms = parse_rfc3339_ms("2026-11-28T21:15:30.120+08:00").unwrap();
        assert_eq!(
            format_rfc3339(ms, UtcOffset::china_standard_time()),
            "2026-11-28T21:15:30.120+08:00"
        );
        assert_eq!(
            format_rfc3339(ms, UtcOffset::parse("Z").unwrap()),
            "2026-11-28T13:15:30.120+00:00"
        );
    }

    #[test]
    fn offsets() {
        assert!(UtcOffset::parse("+08:00").is_some());
        assert!(UtcOffset::parse("-05:30").is_some());
        assert!(UtcOffset::parse("08:00").is_none());
        assert!(UtcOffset::parse("+8:00").is_none());
        assert!(UtcOffset::parse("+24:00").is_none());
    }
}
