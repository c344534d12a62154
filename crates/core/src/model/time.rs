//! Event time. CONTRACT.md accepts RFC 3339 with an offset or integer epoch milliseconds;
//! internally every timestamp is epoch milliseconds, and output is rendered at a fixed,
//! configured UTC offset so that replay is byte-for-byte reproducible.
use std::fmt;

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in event time: epoch milliseconds as the records say (only the engine's
/// watermark ever advances its clock). A type of its own, so that a wall-clock reading
/// or a Kafka timestamp (plain `i64` milliseconds at the adapters) cannot stand in for
/// one unnoticed; spans of event time stay `i64` milliseconds (`t + 500`, `b - a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventTime(i64);

impl EventTime {
    pub const MIN: EventTime = EventTime(i64::MIN);
    pub const MAX: EventTime = EventTime(i64::MAX);

    /// Epoch milliseconds taken as event time (a record's `ts`, a test's instant, or
    /// the wall clock where the adapters let event time follow it).
    pub const fn from_ms(ms: i64) -> Self {
        EventTime(ms)
    }

    /// Epoch milliseconds.
    pub const fn ms(self) -> i64 {
        self.0
    }

    pub fn saturating_add(self, ms: i64) -> Self {
        EventTime(self.0.saturating_add(ms))
    }

    pub fn saturating_sub(self, ms: i64) -> Self {
        EventTime(self.0.saturating_sub(ms))
    }

    /// Milliseconds from `earlier` to this (saturating).
    pub fn since(self, earlier: EventTime) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl std::ops::Add<i64> for EventTime {
    type Output = EventTime;
    fn add(self, ms: i64) -> EventTime {
        EventTime(self.0 + ms)
    }
}

impl std::ops::Sub<i64> for EventTime {
    type Output = EventTime;
    fn sub(self, ms: i64) -> EventTime {
        EventTime(self.0 - ms)
    }
}

/// The span between two event times, in milliseconds.
impl std::ops::Sub for EventTime {
    type Output = i64;
    fn sub(self, other: EventTime) -> i64 {
        self.0 - other.0
    }
}

impl std::ops::AddAssign<i64> for EventTime {
    fn add_assign(&mut self, ms: i64) {
        self.0 += ms;
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The latest instant `chrono` can render in four-digit years; anything beyond is bad input.
const MAX_MS: i64 = 253_402_300_799_999;

/// Parses RFC 3339 (`2026-11-28T21:15:30.120+08:00`, `...Z`) into epoch milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<EventTime> {
    let ts = DateTime::parse_from_rfc3339(s).ok()?.timestamp_millis();
    valid_epoch_ms(ts)
}

/// Accepts epoch milliseconds in the range a four-digit-year date can express.
pub fn valid_epoch_ms(ms: i64) -> Option<EventTime> {
    (0..=MAX_MS).contains(&ms).then_some(EventTime(ms))
}

/// A fixed UTC offset for rendering timestamps (e.g. `+08:00`, China Standard Time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcOffset(FixedOffset);

impl UtcOffset {
    pub fn from_seconds(seconds: i32) -> Option<Self> {
        FixedOffset::east_opt(seconds).map(UtcOffset)
    }

    /// Parses `+08:00`, `-05:30` or `Z` (chrono's offset syntax, whose `+hh:mm` also
    /// refuses a second sign such as `+-5:30`).
    pub fn parse(s: &str) -> Option<Self> {
        if s == "Z" {
            return Self::from_seconds(0);
        }
        // chrono also takes `+0800` and `+08`; configuration documents `+08:00` only.
        if s.len() != 6 || s.as_bytes()[3] != b':' {
            return None;
        }
        s.parse::<FixedOffset>().ok().map(UtcOffset)
    }

    /// Seconds east of UTC.
    pub fn seconds(self) -> i32 {
        self.0.local_minus_utc()
    }

    pub fn china_standard_time() -> Self {
        UtcOffset(FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset"))
    }
}

/// Renders epoch milliseconds (event time, or a wall-clock reading such as an alert's
/// `emitted_ts`) as RFC 3339 with milliseconds at the given offset.
pub fn format_rfc3339(ms: i64, offset: UtcOffset) -> String {
    EventTimestamp::new(EventTime(ms), offset).to_string()
}

/// An event time on its way out: the number the core computes with, and the offset it is
/// shown at. It becomes RFC 3339 text only when serialised (`event_ts`), so nothing in
/// the process renders a time and parses it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTimestamp {
    pub ms: EventTime,
    pub offset: UtcOffset,
}

impl EventTimestamp {
    pub fn new(ms: EventTime, offset: UtcOffset) -> Self {
        EventTimestamp { ms, offset }
    }
}

impl fmt::Display for EventTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset.0.timestamp_millis_opt(self.ms.0).single() {
            Some(dt) => f.write_str(&dt.to_rfc3339_opts(SecondsFormat::Millis, false)),
            // Only reachable for values the decoder already refuses; keep output total.
            None => write!(f, "{}", self.ms),
        }
    }
}

impl Serialize for EventTimestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventTimestamp {
    /// A document read back (the report, the console's history) keeps its own offset.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let dt = DateTime::parse_from_rfc3339(&text).map_err(serde::de::Error::custom)?;
        Ok(EventTimestamp {
            ms: EventTime(dt.timestamp_millis()),
            offset: UtcOffset(*dt.offset()),
        })
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
        assert_eq!(a, EventTime::from_ms(1_795_871_730_120));
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
            format_rfc3339(ms.ms(), UtcOffset::china_standard_time()),
            "2026-11-28T21:15:30.120+08:00"
        );
        assert_eq!(
            format_rfc3339(ms.ms(), UtcOffset::parse("Z").unwrap()),
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
        assert!(UtcOffset::parse("+-5:30").is_none());
        assert!(UtcOffset::parse("+0800").is_none());
        assert_eq!(UtcOffset::parse("-05:30").unwrap().seconds(), -19_800);
    }

    #[test]
    fn timestamps_render_as_chrono_does_and_read_back() {
        let cst = UtcOffset::china_standard_time();
        let minus = UtcOffset::parse("-05:30").unwrap();
        for ms in [0, 1_795_871_730_120, 1_795_871_730_000, 999].map(EventTime::from_ms) {
            for offset in [cst, minus, UtcOffset::parse("Z").unwrap()] {
                let ts = EventTimestamp::new(ms, offset);
                let chrono = offset
                    .0
                    .timestamp_millis_opt(ms.ms())
                    .single()
                    .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, false));
                if let Some(expected) = &chrono {
                    assert_eq!(&ts.to_string(), expected);
                }
                let json = serde_json::to_string(&ts).unwrap();
                assert_eq!(
                    serde_json::from_str::<EventTimestamp>(&json).ok(),
                    chrono.as_ref().map(|_| ts)
                );
            }
        }
        assert!(serde_json::from_str::<EventTimestamp>("\"yesterday\"").is_err());
    }
}
