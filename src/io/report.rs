//! `roadwatch report`: how alerts ended, per detector and per source device, from a
//! stream of alert documents (CONTRACT.md section 3). Detectors are tuned by precision
//! per detector and per camera or reader, so this is the figure the command center asks
//! for; see docs/CLI.md.
//!
//! Reading, grouping and rendering are pure functions over lines and record values, so
//! the file and the Kafka input (`report_kafka`) share them and the tests need neither.
//! Plates are personal data: nothing here reads `details.plate` or the `summary` (which
//! names the plate of a ride-hailing alert), so no plate can reach the output.
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::BufRead;

use serde::Serialize;
use serde_json::{Map, Value};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a person.
    Text,
    /// One JSON object for scripts (docs/CLI.md).
    Json,
}

/// Skipped lines named one by one in the warning; the rest are only counted.
pub const NAMED_SKIPS: usize = 5;

/// Where a document came from, for the warning about a skipped one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Line(u64),
    Record { partition: i32, offset: i64 },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Record { partition, offset } => {
                write!(f, "partition {partition} offset {offset}")
            }
        }
    }
}

/// A line or record that was not an alert document, and why (never its content: it may
/// hold a plate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub origin: Origin,
    pub reason: String,
}

/// How an alert ended, from the `outcome` of its last document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// No `outcome` yet: still open, or ended before outcomes existed.
    Open,
    Confirmed,
    FalseAlarm,
    NotFound,
    Duplicate,
    /// Ended and nobody said how.
    Unknown,
}

impl Fate {
    fn of(doc: &Map<String, Value>) -> Fate {
        match doc.get("outcome").and_then(Value::as_str) {
            None => Fate::Open,
            Some("confirmed") => Fate::Confirmed,
            Some("false_alarm") => Fate::FalseAlarm,
            Some("not_found") => Fate::NotFound,
            Some("duplicate") => Fate::Duplicate,
            // `unknown`, and any value a later contract version adds: the alert ended,
            // but not in a way this report can score.
            Some(_) => Fate::Unknown,
        }
    }
}

/// The devices an alert is charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Devices {
    /// `camera`, `reader` or `station`; `-` for a kind this version does not know.
    device: &'static str,
    /// Empty when no document of the alert named one (counted under `-`).
    ids: Vec<String>,
}

/// What the report keeps of one alert: its last document's detector and fate, and the
/// devices of its last document that named any.
#[derive(Debug, Clone)]
struct AlertState {
    kind: String,
    subtype: String,
    fate: Fate,
    devices: Devices,
}

/// The device field of each kind, as the detectors write it (`camera_ids` in
/// core/detect/pedestrian.rs, `reader_id` in `read_details` of ride_hailing.rs,
/// `station_id` in weather.rs).
const DEVICE_FIELDS: [(&str, &str, &str); 3] = [
    ("pedestrian", "camera", "camera_ids"),
    ("illegal_ride_hailing", "reader", "reader_id"),
    ("severe_weather", "station", "station_id"),
];

/// The device ids a document names, or `None` when it has no device field.
fn device_ids(details: Option<&Value>, field: &str) -> Option<Vec<String>> {
    let ids: Vec<String> = match details?.get(field)? {
        Value::String(id) => vec![id.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    (!ids.is_empty()).then_some(ids)
}

/// The documents read so far, folded per `alert_id`.
#[derive(Debug)]
pub struct Tally {
    alerts_topic: String,
    alerts: HashMap<String, AlertState>,
    documents: u64,
    skipped: u64,
    named_skips: Vec<Skip>,
}

impl Tally {
    /// `alerts_topic` is the configured name of the alerts topic (`kafka.topics.alerts`):
    /// replay output lines carry it, and only those lines are counted.
    pub fn new(alerts_topic: &str) -> Tally {
        Tally {
            alerts_topic: alerts_topic.to_owned(),
            alerts: HashMap::new(),
            documents: 0,
            skipped: 0,
            named_skips: Vec::new(),
        }
    }

    /// Alert documents counted (every document, not every alert).
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// Lines or records that were not alert documents.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The first [`NAMED_SKIPS`] skipped lines or records.
    pub fn named_skips(&self) -> &[Skip] {
        &self.named_skips
    }

    /// One input line: a replay output line (`{"topic":..,"key":..,"value":{..}}`, of
    /// which only the alerts topic counts) or a bare alert document. Blank lines are
    /// ignored.
    pub fn add_line(&mut self, number: u64, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let origin = Origin::Line(number);
        let value = match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => return self.skip(origin, "not a JSON object".into()),
            Err(e) => return self.skip(origin, format!("not JSON ({e})")),
        };
        if let (Some(topic), Some(inner)) = (value.get("topic"), value.get("value")) {
            // A replay line: dispatch copies repeat the alerts-topic document and DLQ
            // lines are input records, so only the alerts topic is counted.
            if topic.as_str() != Some(self.alerts_topic.as_str()) {
                return;
            }
            match inner {
                Value::Object(doc) => self.add(origin, doc),
                _ => self.skip(
                    origin,
                    "the value of an alerts line is not an object".into(),
                ),
            }
        } else {
            self.add(origin, &value);
        }
    }

    /// One record value of the alerts topic: a bare alert document.
    pub fn add_record(&mut self, partition: i32, offset: i64, payload: Option<&[u8]>) {
        let origin = Origin::Record { partition, offset };
        let Some(payload) = payload else {
            return self.skip(origin, "no value".into());
        };
        match serde_json::from_slice::<Value>(payload) {
            Ok(Value::Object(doc)) => self.add(origin, &doc),
            Ok(_) => self.skip(origin, "not a JSON object".into()),
            Err(e) => self.skip(origin, format!("not JSON ({e})")),
        }
    }

    /// Every line of `input`, numbered from 1. Only an I/O error stops it; a line of
    /// invalid UTF-8 is a bad line like any other.
    pub fn read_lines(&mut self, input: impl BufRead) -> std::io::Result<()> {
        for (n, line) in input.split(b'\n').enumerate() {
            let line = line?;
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            self.add_line(n as u64 + 1, line);
        }
        Ok(())
    }

    /// The warning about skipped lines or records, naming the first few; `None` when
    /// nothing was skipped.
    pub fn skip_warning(&self) -> Option<String> {
        let first = self.named_skips.first()?;
        let what = match (&first.origin, self.skipped) {
            (Origin::Line(_), 1) => "line",
            (Origin::Line(_), _) => "lines",
            (Origin::Record { .. }, 1) => "record",
            (Origin::Record { .. }, _) => "records",
        };
        let named: Vec<String> = self
            .named_skips
            .iter()
            .map(|s| format!("{}: {}", s.origin, s.reason))
            .collect();
        let more = self.skipped - self.named_skips.len() as u64;
        let tail = if more > 0 {
            format!("; {more} more")
        } else {
            String::new()
        };
        Some(format!(
            "skipped {} {what} that are not alert documents: {}{tail}",
            self.skipped,
            named.join("; ")
        ))
    }

    fn add(&mut self, origin: Origin, doc: &Map<String, Value>) {
        let text = |key: &str| {
            doc.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        const REQUIRED: [&str; 4] = ["alert_id", "kind", "subtype", "status"];
        let fields = REQUIRED.map(text);
        let [Some(id), Some(kind), Some(subtype), Some(_status)] = fields else {
            let key = REQUIRED
                .iter()
                .zip(&fields)
                .find_map(|(k, v)| v.is_none().then_some(*k))
                .unwrap_or_default();
            return self.skip(
                origin,
                format!("not an alert document: `{key}` missing or not text"),
            );
        };
        self.documents += 1;
        let details = doc.get("details");
        let named = DEVICE_FIELDS.iter().find(|(k, _, _)| *k == kind);
        // A kind this version does not know may still name one of the known fields.
        let found = match named {
            Some((_, device, field)) => device_ids(details, field).map(|ids| (*device, ids)),
            None => DEVICE_FIELDS.iter().find_map(|(_, device, field)| {
                device_ids(details, field).map(|ids| (*device, ids))
            }),
        };
        let fate = Fate::of(doc);
        let state = self
            .alerts
            .entry(id.to_owned())
            .or_insert_with(|| AlertState {
                kind: String::new(),
                subtype: String::new(),
                fate,
                devices: Devices {
                    device: "-",
                    ids: Vec::new(),
                },
            });
        // The last document decides the fate; the device stays that of the last
        // document that named one (a later document without the field does not erase it).
        state.kind = kind.to_owned();
        state.subtype = subtype.to_owned();
        state.fate = fate;
        match found {
            Some((device, ids)) => state.devices = Devices { device, ids },
            None if state.devices.ids.is_empty() => {
                state.devices.device = named.map_or("-", |(_, device, _)| *device);
            }
            None => {}
        }
    }

    fn skip(&mut self, origin: Origin, reason: String) {
        self.skipped += 1;
        if self.named_skips.len() < NAMED_SKIPS {
            self.named_skips.push(Skip { origin, reason });
        }
    }

    /// The report over everything read so far.
    pub fn report(&self) -> Report {
        let mut total = Counts::default();
        let mut detectors: BTreeMap<(&str, &str), Counts> = BTreeMap::new();
        let mut sources: HashMap<(&str, &str), Counts> = HashMap::new();
        for alert in self.alerts.values() {
            total.add(alert.fate);
            detectors
                .entry((&alert.kind, &alert.subtype))
                .or_default()
                .add(alert.fate);
            let device = alert.devices.device;
            if alert.devices.ids.is_empty() {
                sources.entry((device, "-")).or_default().add(alert.fate);
            }
            for id in &alert.devices.ids {
                sources.entry((device, id)).or_default().add(alert.fate);
            }
        }
        let by_detector = detectors
            .into_iter()
            .map(|((kind, subtype), counts)| DetectorRow {
                kind: kind.to_owned(),
                subtype: subtype.to_owned(),
                counts: counts.finish(),
            })
            .collect();
        let mut by_source: Vec<SourceRow> = sources
            .into_iter()
            .map(|((device, id), counts)| SourceRow {
                device: device.to_owned(),
                id: id.to_owned(),
                counts: counts.finish(),
            })
            .collect();
        by_source.sort_by(|a, b| {
            worst_first(a.counts.precision, b.counts.precision)
                .then(b.counts.alerts.cmp(&a.counts.alerts))
                .then_with(|| a.id.cmp(&b.id))
                .then_with(|| a.device.cmp(&b.device))
        });
        Report {
            alerts: total.alerts,
            documents: self.documents,
            skipped: self.skipped,
            total: total.finish(),
            by_detector,
            by_source,
        }
    }
}

/// Precision ascending, rows without one last.
fn worst_first(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// How the alerts of one row ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub alerts: u64,
    pub open: u64,
    /// Closed with an outcome: confirmed + false_alarm + not_found + duplicate.
    pub closed: u64,
    pub confirmed: u64,
    pub false_alarm: u64,
    pub not_found: u64,
    pub duplicate: u64,
    pub unknown: u64,
    /// confirmed ÷ closed, `None` when nothing was closed with an outcome.
    pub precision: Option<f64>,
}

impl Counts {
    fn add(&mut self, fate: Fate) {
        self.alerts += 1;
        let slot = match fate {
            Fate::Open => &mut self.open,
            Fate::Confirmed => &mut self.confirmed,
            Fate::FalseAlarm => &mut self.false_alarm,
            Fate::NotFound => &mut self.not_found,
            Fate::Duplicate => &mut self.duplicate,
            Fate::Unknown => &mut self.unknown,
        };
        *slot += 1;
    }

    fn finish(mut self) -> Counts {
        self.closed = self.confirmed + self.false_alarm + self.not_found + self.duplicate;
        self.precision = (self.closed > 0).then(|| self.confirmed as f64 / self.closed as f64);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectorRow {
    pub kind: String,
    pub subtype: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRow {
    /// `camera`, `reader`, `station`, or `-` for a kind this version does not know.
    pub device: String,
    /// The device id, `-` when the alert's documents named none.
    pub id: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// The whole report; `--format json` prints it as one object (docs/CLI.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Distinct alerts (by `alert_id`).
    pub alerts: u64,
    /// Alert documents read (an alert has one per change).
    pub documents: u64,
    /// Lines or records that were not alert documents.
    pub skipped: u64,
    /// Every alert once. By source, an alert seen by two cameras is in both rows, so
    /// those rows may add up to more than this.
    pub total: Counts,
    pub by_detector: Vec<DetectorRow>,
    pub by_source: Vec<SourceRow>,
}

const HEADERS: [&str; 9] = [
    "alerts",
    "open",
    "closed",
    "confirmed",
    "false alarm",
    "not found",
    "duplicate",
    "unknown",
    "precision",
];

fn cells(c: &Counts) -> [String; 9] {
    [
        c.alerts.to_string(),
        c.open.to_string(),
        c.closed.to_string(),
        c.confirmed.to_string(),
        c.false_alarm.to_string(),
        c.not_found.to_string(),
        c.duplicate.to_string(),
        c.unknown.to_string(),
        c.precision
            .map_or_else(|| "-".to_owned(), |p| format!("{:.1}%", p * 100.0)),
    ]
}

/// One table: a left-aligned label column, right-aligned numbers, a total line.
fn table(out: &mut String, label: &str, rows: &[(String, &Counts)], total: &Counts) {
    let mut lines: Vec<(String, [String; 9])> = Vec::with_capacity(rows.len() + 2);
    lines.push((label.to_owned(), HEADERS.map(str::to_owned)));
    lines.extend(rows.iter().map(|(name, c)| (name.clone(), cells(c))));
    lines.push(("total".to_owned(), cells(total)));
    let first = lines
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let mut widths = [0usize; 9];
    for (_, cols) in &lines {
        for (w, col) in widths.iter_mut().zip(cols) {
            *w = (*w).max(col.chars().count());
        }
    }
    for (name, cols) in &lines {
        let mut line = format!("{name:<first$}");
        for (w, col) in widths.iter().zip(cols) {
            line.push_str(&format!("  {col:>w$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

impl Report {
    /// `--format text`: a summary line, then the "by detector" and "by source" tables.
    pub fn render_text(&self) -> String {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut out = format!(
            "{} from {}; {} skipped\n\nby detector\n",
            plural(self.alerts, "alert", "alerts"),
            plural(self.documents, "document", "documents"),
            self.skipped,
        );
        let detectors: Vec<(String, &Counts)> = self
            .by_detector
            .iter()
            .map(|r| (format!("{}/{}", r.kind, r.subtype), &r.counts))
            .collect();
        table(&mut out, "detector", &detectors, &self.total);
        out.push_str("\nby source\n");
        let sources: Vec<(String, &Counts)> = self
            .by_source
            .iter()
            .map(|r| (format!("{} {}", r.device, r.id), &r.counts))
            .collect();
        table(&mut out, "source", &sources, &self.total);
        out
    }

    /// `--format json`: one object on one line.
    pub fn render_json(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a report always serialises");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, kind: &str, subtype: &str, status: &str, details: Value) -> Value {
        serde_json::json!({
            "alert_id": id, "kind": kind, "subtype": subtype, "severity": "warning",
            "status": status, "event_ts": "2026-11-28T21:15:30.120+08:00",
            "details": details, "source_event_ids": []
        })
    }

    fn with_outcome(mut v: Value, outcome: &str) -> Value {
        v["outcome"] = Value::from(outcome);
        v
    }

    fn tally(lines: &[Value]) -> Tally {
        let mut t = Tally::new("alerts");
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        t.read_lines(text.as_bytes()).unwrap();
        t
    }

    fn ped(id: &str, cams: &[&str]) -> Value {
        doc(
            id,
            "pedestrian",
            "pedestrian",
            "new",
            serde_json::json!({"camera_ids": cams}),
        )
    }

    fn source<'a>(r: &'a Report, device: &str, id: &str) -> &'a Counts {
        &r.by_source
            .iter()
            .find(|s| s.device == device && s.id == id)
            .unwrap_or_else(|| panic!("no row {device} {id} in {:?}", r.by_source))
            .counts
    }

    #[test]
    fn the_last_document_decides_the_fate() {
        let t = tally(&[
            ped("a", &["cam-1"]),
            with_outcome(ped("a", &["cam-1"]), "confirmed"),
            // Reopened under the same id (never happens today): the last word counts.
            ped("b", &["cam-1"]),
            with_outcome(ped("b", &["cam-1"]), "false_alarm"),
            ped("b", &["cam-1"]),
        ]);
        let r = t.report();
        assert_eq!(r.alerts, 2);
        assert_eq!(r.documents, 5);
        assert_eq!(r.total.confirmed, 1);
        assert_eq!(r.total.open, 1);
        assert_eq!(r.total.false_alarm, 0);
    }

    #[test]
    fn cleared_without_outcome_is_open_and_unknown_is_ended() {
        let r = tally(&[
            doc(
                "a",
                "severe_weather",
                "fog",
                "cleared",
                serde_json::json!({"station_id": "wx-07"}),
            ),
            with_outcome(
                doc(
                    "b",
                    "severe_weather",
                    "fog",
                    "cleared",
                    serde_json::json!({"station_id": "wx-07"}),
                ),
                "unknown",
            ),
        ])
        .report();
        let row = &r.by_detector[0];
        assert_eq!(
            (row.counts.open, row.counts.unknown, row.counts.closed),
            (1, 1, 0)
        );
        assert_eq!(row.counts.precision, None);
    }

    #[test]
    fn precision_is_confirmed_over_closed_with_an_outcome() {
        let mk = |id: &str, outcome: &str| {
            with_outcome(
                doc(
                    id,
                    "illegal_ride_hailing",
                    "pattern",
                    "cleared",
                    serde_json::json!({"reader_id": "anpr-1", "plate": "贵F12345"}),
                ),
                outcome,
            )
        };
        let r = tally(&[
            mk("a", "confirmed"),
            mk("b", "false_alarm"),
            mk("c", "not_found"),
            mk("d", "duplicate"),
            mk("e", "unknown"),
        ])
        .report();
        let c = source(&r, "reader", "anpr-1");
        assert_eq!(c.alerts, 5);
        assert_eq!(c.closed, 4);
        assert_eq!(c.precision, Some(0.25));
        assert!(r.render_text().contains("25.0%"), "{}", r.render_text());
        // Plates never reach the output.
        assert!(!r.render_text().contains("贵F"));
        assert!(!r.render_json().contains("贵F"));
    }

    #[test]
    fn an_alert_seen_by_two_cameras_counts_for_both() {
        let r = tally(&[with_outcome(ped("a", &["cam-1", "cam-2"]), "false_alarm")]).report();
        assert_eq!(source(&r, "camera", "cam-1").false_alarm, 1);
        assert_eq!(source(&r, "camera", "cam-2").false_alarm, 1);
        assert_eq!(r.total.alerts, 1);
    }

    #[test]
    fn devices_come_from_the_last_document_that_names_them() {
        let mut last = with_outcome(ped("a", &[]), "confirmed");
        last["details"] = serde_json::json!({});
        let r = tally(&[ped("a", &["cam-1"]), ped("a", &["cam-9"]), last]).report();
        assert_eq!(r.by_source.len(), 1);
        assert_eq!(source(&r, "camera", "cam-9").confirmed, 1);
        // No document named a device: the alert counts under `-`.
        let r = tally(&[doc(
            "w",
            "severe_weather",
            "ice",
            "new",
            serde_json::json!({}),
        )])
        .report();
        assert_eq!(source(&r, "station", "-").alerts, 1);
    }

    #[test]
    fn detector_and_source_rows_are_sorted() {
        let mut lines = vec![
            with_outcome(ped("p1", &["cam-good"]), "confirmed"),
            with_outcome(ped("p2", &["cam-bad"]), "false_alarm"),
            with_outcome(ped("p3", &["cam-bad"]), "false_alarm"),
            with_outcome(ped("p4", &["cam-half"]), "confirmed"),
            with_outcome(ped("p5", &["cam-half"]), "not_found"),
            ped("p6", &["cam-open"]),
            doc(
                "w1",
                "severe_weather",
                "fog",
                "new",
                serde_json::json!({"station_id": "wx-1"}),
            ),
            doc(
                "r1",
                "illegal_ride_hailing",
                "watchlist",
                "new",
                serde_json::json!({"reader_id": "anpr-1"}),
            ),
        ];
        lines.push(with_outcome(ped("p7", &["cam-bad2"]), "duplicate"));
        let r = tally(&lines).report();
        let detectors: Vec<String> = r
            .by_detector
            .iter()
            .map(|d| format!("{}/{}", d.kind, d.subtype))
            .collect();
        assert_eq!(
            detectors,
            [
                "illegal_ride_hailing/watchlist",
                "pedestrian/pedestrian",
                "severe_weather/fog"
            ]
        );
        let ids: Vec<&str> = r.by_source.iter().map(|s| s.id.as_str()).collect();
        // 0 % (2 alerts before 1), 50 %, 100 %, then no precision by alerts and id.
        assert_eq!(
            ids,
            ["cam-bad", "cam-bad2", "cam-half", "cam-good", "anpr-1", "cam-open", "wx-1"]
        );
    }

    #[test]
    fn replay_lines_count_only_the_alerts_topic() {
        let d = with_outcome(ped("a", &["cam-1"]), "confirmed");
        let text = format!(
            "{}\n{}\n{}\n",
            serde_json::json!({"topic": "alerts", "key": "a", "value": d}),
            serde_json::json!({"topic": "dispatch.P-12", "key": "a", "value": d}),
            serde_json::json!({"topic": "roadwatch-dlq", "key": null,
                               "value": {"reason": "invalid_json", "value": "x"}}),
        );
        let mut t = Tally::new("alerts");
        t.read_lines(text.as_bytes()).unwrap();
        let r = t.report();
        assert_eq!((r.alerts, r.documents, r.skipped), (1, 1, 0));
        // The configured name is the one that counts.
        let mut t = Tally::new("prod-alerts");
        t.read_lines(text.as_bytes()).unwrap();
        assert_eq!(t.report().alerts, 0);
    }

    #[test]
    fn bare_documents_and_replay_lines_mix() {
        let d = with_outcome(ped("a", &["cam-1"]), "confirmed");
        let text = format!(
            "{}\n\n{}\n",
            serde_json::json!({"topic": "alerts", "key": "a", "value": ped("a", &["cam-1"])}),
            d
        );
        let mut t = Tally::new("alerts");
        t.read_lines(text.as_bytes()).unwrap();
        let r = t.report();
        assert_eq!((r.alerts, r.total.confirmed, r.skipped), (1, 1, 0));
    }

    #[test]
    fn bad_lines_are_skipped_and_the_first_five_named() {
        let good = ped("a", &["cam-1"]).to_string();
        let mut text =
            format!("{good}\nnot json\n\n[1,2]\n{{\"alert_id\":\"x\",\"kind\":\"pedestrian\"}}\n");
        text.push_str("{\"topic\":\"alerts\",\"key\":\"k\",\"value\":42}\n");
        text.push_str(&format!("{good}\r\n"));
        for _ in 0..3 {
            text.push_str("{}\n");
        }
        text.push_str("\u{feff}\u{0}\n");
        let mut t = Tally::new("alerts");
        t.read_lines(text.as_bytes()).unwrap();
        assert_eq!(t.documents(), 2);
        assert_eq!(t.skipped(), 8);
        let named: Vec<String> = t
            .named_skips()
            .iter()
            .map(|s| format!("{}: {}", s.origin, s.reason))
            .collect();
        assert_eq!(named.len(), NAMED_SKIPS);
        assert!(named[0].starts_with("line 2: not JSON"), "{named:?}");
        assert_eq!(named[1], "line 4: not a JSON object");
        assert_eq!(
            named[2],
            "line 5: not an alert document: `subtype` missing or not text"
        );
        assert_eq!(
            named[3],
            "line 6: the value of an alerts line is not an object"
        );
        assert_eq!(
            named[4],
            "line 8: not an alert document: `alert_id` missing or not text"
        );
        let warning = t.skip_warning().unwrap();
        assert!(
            warning.starts_with("skipped 8 lines that are not alert documents: line 2: not JSON"),
            "{warning}"
        );
        assert!(
            warning.ends_with(
                "; line 8: not an alert document: `alert_id` missing or not text; 3 more"
            ),
            "{warning}"
        );
        // Invalid UTF-8 is a bad line too, not an I/O error.
        let mut t = Tally::new("alerts");
        t.read_lines(&b"\xff\xfe\n"[..]).unwrap();
        assert_eq!(t.skipped(), 1);
    }

    #[test]
    fn kafka_records_are_bare_documents() {
        let mut t = Tally::new("alerts");
        let d = with_outcome(ped("a", &["cam-1"]), "duplicate").to_string();
        t.add_record(0, 7, Some(d.as_bytes()));
        t.add_record(1, 3, None);
        t.add_record(1, 4, Some(b"{"));
        assert_eq!(t.report().total.duplicate, 1);
        assert_eq!(t.skipped(), 2);
        assert_eq!(
            t.named_skips()[0].origin.to_string(),
            "partition 1 offset 3"
        );
    }

    #[test]
    fn json_has_the_documented_shape() {
        let r = tally(&[with_outcome(ped("a", &["cam-1"]), "confirmed")]).report();
        let v: Value = serde_json::from_str(&r.render_json()).unwrap();
        assert_eq!(v["alerts"], 1);
        assert_eq!(v["skipped"], 0);
        let row = &v["by_detector"][0];
        for key in [
            "kind",
            "subtype",
            "alerts",
            "open",
            "closed",
            "confirmed",
            "false_alarm",
            "not_found",
            "duplicate",
            "unknown",
            "precision",
        ] {
            assert!(row.get(key).is_some(), "{key} missing from {row}");
        }
        assert_eq!(row["precision"], 1.0);
        assert_eq!(v["by_source"][0]["device"], "camera");
        assert_eq!(v["by_source"][0]["id"], "cam-1");
        let open = tally(&[ped("b", &["cam-1"])]).report();
        let v: Value = serde_json::from_str(&open.render_json()).unwrap();
        assert_eq!(v["by_source"][0]["precision"], Value::Null);
    }

    #[test]
    fn text_columns_line_up() {
        let r = tally(&[
            with_outcome(ped("a", &["cam-G76-0042"]), "false_alarm"),
            doc(
                "w",
                "severe_weather",
                "fog",
                "new",
                serde_json::json!({"station_id": "wx-07"}),
            ),
        ])
        .report();
        let text = r.render_text();
        assert!(
            text.starts_with("2 alerts from 2 documents; 0 skipped\n"),
            "{text}"
        );
        let table: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "by detector")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(table.len(), 4, "{text}");
        // Right-aligned: every line of a table ends in the same column.
        assert!(table.iter().all(|l| l.len() == table[0].len()), "{text}");
        assert!(table[1].starts_with("pedestrian/pedestrian "), "{text}");
        assert!(table[1].ends_with("0.0%"), "{text}");
        assert!(table[2].ends_with(" -"), "{text}");
        assert!(table[3].starts_with("total "), "{text}");
        assert!(text.contains("\nby source\nsource "), "{text}");
        assert!(text.contains("\ncamera cam-G76-0042 "), "{text}");
    }
}
