//! Building alert documents (CONTRACT.md section 3) the same way for every detector:
//! deterministic ids, location from a road position, and localized summaries.
use chrono::{TimeZone, Utc};

use super::model::{
    Alert, AlertKind, AlertLocation, AlertStatus, EventTime, EventTimestamp, Intercept, Severity,
};
use super::roads::{Direction, RoadPosition, Stake, Structure};
use super::settings::{Locale, OutputSettings};

/// What a detector decides; [`AlertDraft::build`] renders it into the wire document.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDraft {
    pub alert_id: String,
    pub kind: AlertKind,
    pub subtype: &'static str,
    pub severity: Severity,
    pub status: AlertStatus,
    /// Event time of the record that triggered this alert (or this change to it).
    pub event_ms: EventTime,
    pub location: AlertLocation,
    pub summary: String,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub source_event_ids: Vec<String>,
    /// `Some(false)` while the detector no longer sees a condition it keeps open.
    pub observed: Option<bool>,
    /// Where a unit can stop the vehicle (ride-hailing), for the dispatcher.
    pub intercept: Option<Intercept>,
}

impl AlertDraft {
    /// The wire document; `dispatch` is filled in later by the dispatcher, and
    /// `emitted_ts` by the adapter that produces it (the core has no clock).
    pub fn build(self, output: &OutputSettings) -> Alert {
        let event_ts = EventTimestamp::new(self.event_ms, output.utc_offset);
        Alert {
            alert_id: self.alert_id,
            kind: self.kind,
            subtype: self.subtype.to_owned(),
            severity: self.severity,
            status: self.status,
            emitted_ts: event_ts.to_string(),
            event_ts,
            location: self.location,
            summary: self.summary,
            details: self.details,
            dispatch: None,
            source_event_ids: self.source_event_ids,
            observed: self.observed,
            acknowledged_by: None,
            notes: Vec::new(),
            outcome: None,
            closed_by: None,
            intercept: self.intercept,
        }
    }
}

/// A deterministic alert id: `prefix-part-part-…-YYYYMMDDTHHMMSS` (UTC of the first
/// triggering event). The same input records in the same order give the same ids, and
/// every change to one incident keeps its id. Parts are sanitised to the identifier
/// alphabet so that acks (which validate `alert_id`) can always name the alert.
pub fn alert_id(prefix: &str, parts: &[&str], first_ms: EventTime) -> String {
    let mut id = String::with_capacity(48);
    id.push_str(prefix);
    for part in parts {
        id.push('-');
        id.extend(part.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        }));
    }
    id.push('-');
    id.push_str(&compact_utc(first_ms));
    // Identifiers are at most 64 characters; keep the time, which makes it unique.
    if id.len() > 64 {
        let time = compact_utc(first_ms);
        let keep = 64 - time.len() - 1;
        let mut head: String = id.chars().take(keep).collect();
        head.push('-');
        head.push_str(&time);
        return head;
    }
    id
}

fn compact_utc(ms: EventTime) -> String {
    match Utc.timestamp_millis_opt(ms.ms()).single() {
        Some(t) => t.format("%Y%m%dT%H%M%S").to_string(),
        None => ms.to_string(),
    }
}

/// The alert location of a point, with road fields when it lies on the network.
pub fn location(lon: f64, lat: f64, pos: Option<&RoadPosition>) -> AlertLocation {
    AlertLocation {
        lon,
        lat,
        road_id: pos.map(|p| p.road_id.to_string()),
        road_name: pos.map(|p| p.name.to_string()),
        direction: pos.map(|p| p.direction.as_str().to_owned()),
        stake: pos.map(|p| p.stake.to_string()),
        stake_m: pos.map(|p| p.stake_m.round() as i64),
        structure: pos.and_then(|p| p.structure).map(|s| s.as_str().to_owned()),
    }
}

/// "G76 厦蓉高速 上行 K1203+450" / "G76 厦蓉高速 up K1203+450"; falls back to
/// coordinates off the network.
pub fn describe_place(loc: &AlertLocation, locale: Locale) -> String {
    let (Some(road_id), Some(stake)) = (&loc.road_id, &loc.stake) else {
        return format!("{:.5},{:.5}", loc.lon, loc.lat);
    };
    let name = loc.road_name.as_deref().filter(|n| *n != road_id.as_str());
    let dir = loc.direction.as_deref().and_then(|d| match (d, locale) {
        ("up", Locale::ZhCn) => Some("上行"),
        ("down", Locale::ZhCn) => Some("下行"),
        ("up", Locale::En) => Some("up"),
        ("down", Locale::En) => Some("down"),
        _ => None,
    });
    let mut s = road_id.clone();
    for part in [name, dir, Some(stake.as_str())].into_iter().flatten() {
        s.push(' ');
        s.push_str(part);
    }
    s
}

/// Structure words for summaries.
pub fn structure_word(structure: Option<&str>, locale: Locale) -> Option<&'static str> {
    match (structure?, locale) {
        ("tunnel", Locale::ZhCn) => Some("隧道内"),
        ("bridge", Locale::ZhCn) => Some("桥梁上"),
        ("tunnel", Locale::En) => Some("in tunnel"),
        ("bridge", Locale::En) => Some("on bridge"),
        _ => None,
    }
}

/// A stake in metres as text, for stretch summaries.
pub fn stake_text(stake_m: f64) -> String {
    Stake(stake_m).to_string()
}

/// Whether a position is inside a tunnel or on a bridge.
pub fn on_structure(pos: &RoadPosition) -> bool {
    matches!(pos.structure, Some(Structure::Tunnel | Structure::Bridge))
}

/// `up`/`down` for ids; `both` lines are named as such.
pub fn direction_part(d: Direction) -> &'static str {
    d.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_valid_identifiers() {
        let a = alert_id(
            "ped",
            &["G76", "up", "1203450"],
            EventTime::from_ms(1_795_871_730_120),
        );
        assert_eq!(a, "ped-G76-up-1203450-20261128T131530");
        assert_eq!(
            a,
            alert_id(
                "ped",
                &["G76", "up", "1203450"],
                EventTime::from_ms(1_795_871_730_120)
            )
        );
        let odd = alert_id("wx", &["厦蓉 G76", "x/y"], EventTime::from_ms(0));
        assert!(crate::model::is_valid_identifier(&odd), "{odd}");
        let long = alert_id("rh", &[&"x".repeat(80)], EventTime::from_ms(0));
        assert!(
            long.len() <= 64 && long.ends_with("-19700101T000000"),
            "{long}"
        );
    }

    #[test]
    fn places_read_naturally() {
        let loc = AlertLocation {
            lon: 105.0,
            lat: 27.0,
            road_id: Some("G76".into()),
            road_name: Some("厦蓉高速".into()),
            direction: Some("up".into()),
            stake: Some("K1203+450".into()),
            stake_m: Some(1_203_450),
            structure: Some("tunnel".into()),
        };
        assert_eq!(
            describe_place(&loc, Locale::ZhCn),
            "G76 厦蓉高速 上行 K1203+450"
        );
        assert_eq!(
            describe_place(&loc, Locale::En),
            "G76 厦蓉高速 up K1203+450"
        );
        let off = location(105.123456, 27.5, None);
        assert_eq!(describe_place(&off, Locale::En), "105.12346,27.50000");
    }
}
