//! What the console knows: the alert documents read from the `alerts` stream (the open
//! alerts with their history, the recently closed ones), the units' latest states, and
//! an ordered log of alert documents that lets a reconnecting page resume where it left
//! off. Pure: positions and documents come in, no I/O and no clock.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// Where a record is in the streams the console reads: its partition and offset. Alert
/// documents are on partitions 0, 1, …; a unit's answer (`dispatch-acks`) on partition
/// `p` is kept as partition `-1 - p`, so that one cursor covers both. The demo, fed
/// in-process, numbers its documents on partition 0 and its answers on -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamPos {
    pub partition: i32,
    pub offset: i64,
}

impl StreamPos {
    /// Where an answer read from `dispatch-acks` partition `partition` is kept.
    pub fn ack(partition: i32, offset: i64) -> StreamPos {
        StreamPos {
            partition: -1 - partition,
            offset,
        }
    }
}

/// A page's place in the alerts stream: per partition, the offset of the last document
/// it has. Sent as the SSE event id, so it must survive a round trip through text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(BTreeMap<i32, i64>);

impl Cursor {
    /// `0:12,1:7` — partition:offset pairs.
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(p, o)| format!("{p}:{o}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `None` for anything that is not a list of partition:offset pairs.
    pub fn decode(s: &str) -> Option<Cursor> {
        let mut m = BTreeMap::new();
        for pair in s.split(',').filter(|p| !p.is_empty()) {
            let (p, o) = pair.split_once(':')?;
            m.insert(p.trim().parse().ok()?, o.trim().parse().ok()?);
        }
        Some(Cursor(m))
    }

    /// Whether a document at `pos` is past this cursor (not yet seen by its page).
    pub fn before(&self, pos: StreamPos) -> bool {
        self.0.get(&pos.partition).map_or(true, |o| pos.offset > *o)
    }

    pub fn advance(&mut self, pos: StreamPos) {
        let o = self.0.entry(pos.partition).or_insert(pos.offset);
        *o = (*o).max(pos.offset);
    }
}

/// What a logged record is: an alert document, or a unit's answer to a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Alert,
    Ack,
}

/// One alert document (or a unit's answer) as the console keeps it.
#[derive(Debug, Clone)]
pub struct Doc {
    pub kind: DocKind,
    pub pos: StreamPos,
    pub alert_id: Arc<str>,
    /// The unit it is addressed to (`dispatch.unit_id`), if any.
    pub unit_id: Option<Arc<str>>,
    /// Every unit the alert has been addressed to so far, this document included: a unit
    /// taken off an alert (declined, timed out, reassigned) hears that it was.
    pub units: Arc<[Arc<str>]>,
    pub closed: bool,
    pub value: Arc<Value>,
    /// The cursor just after this document: its SSE id.
    pub cursor: Cursor,
}

impl Doc {
    /// Whether a unit may see this document: the alert is, or was, addressed to it.
    pub fn for_unit(&self, unit_id: &str) -> bool {
        self.units.iter().any(|u| &**u == unit_id)
    }
}

/// A unit's state as `GET /api/units` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitState {
    pub unit_id: String,
    pub lon: f64,
    pub lat: f64,
    pub status: String,
    pub speed_kmh: Option<f64>,
    pub ts: Value,
    /// The alert the unit is addressed to now, if it is open.
    pub alert_id: Option<String>,
}

/// Alert documents kept for resuming pages; older ones are dropped (a page that was away
/// longer reloads the picture).
const LOG_CAPACITY: usize = 50_000;
/// Closed alerts kept (their last document answers a late `resolved` from a unit).
const CLOSED_CAPACITY: usize = 2_000;
/// Answers kept per alert (a unit that keeps pressing a button is not news).
const MAX_ACKS_PER_ALERT: usize = 50;

#[derive(Default)]
pub struct Picture {
    /// Every document of each open alert, oldest first.
    open: HashMap<Arc<str>, Vec<Doc>>,
    closed: HashMap<Arc<str>, Doc>,
    closed_order: VecDeque<Arc<str>>,
    units: BTreeMap<String, UnitState>,
    /// Each weather station's latest observation (the map shows what it measures).
    stations: BTreeMap<String, Value>,
    /// The units' answers per alert, oldest first.
    acks: HashMap<Arc<str>, Vec<Arc<Value>>>,
    log: VecDeque<Doc>,
    cursor: Cursor,
}

impl Picture {
    /// An alert document read at `pos`; `None` when it was seen already (a re-read) or
    /// is not an alert document. Returns the document as logged.
    pub fn apply_alert(&mut self, pos: StreamPos, value: Value) -> Option<Doc> {
        if !self.cursor.before(pos) {
            return None;
        }
        let alert_id: Arc<str> = value.get("alert_id")?.as_str()?.into();
        let unit_id: Option<Arc<str>> = value
            .pointer("/dispatch/unit_id")
            .and_then(Value::as_str)
            .map(Into::into);
        let closed = value.get("status").and_then(Value::as_str) == Some("cleared");
        self.cursor.advance(pos);
        let mut units: Vec<Arc<str>> = self
            .latest(&alert_id)
            .map(|d| d.units.to_vec())
            .unwrap_or_default();
        if let Some(u) = &unit_id {
            if !units.contains(u) {
                units.push(u.clone());
            }
        }
        let doc = Doc {
            kind: DocKind::Alert,
            pos,
            alert_id: alert_id.clone(),
            units: units.into(),
            unit_id,
            closed,
            value: Arc::new(value),
            cursor: self.cursor.clone(),
        };
        // A late outcome re-sends a cleared alert: it stays closed, its last document the new one.
        if closed {
            self.open.remove(&alert_id);
            if self.closed.insert(alert_id.clone(), doc.clone()).is_none() {
                self.closed_order.push_back(alert_id);
                while self.closed_order.len() > CLOSED_CAPACITY {
                    if let Some(old) = self.closed_order.pop_front() {
                        self.closed.remove(&old);
                    }
                }
            }
        } else {
            self.closed.remove(&alert_id);
            self.open.entry(alert_id).or_default().push(doc.clone());
        }
        self.log.push_back(doc.clone());
        while self.log.len() > LOG_CAPACITY {
            self.log.pop_front();
        }
        Some(doc)
    }

    /// A unit's answer (`dispatch-acks`) at `pos` ([`StreamPos::ack`]): kept with its
    /// alert for the timeline (`accepted` and `arrived` change no alert document) and
    /// logged for resuming pages. `None` when seen already or not an answer.
    pub fn apply_ack(&mut self, pos: StreamPos, value: Value) -> Option<Doc> {
        if !self.cursor.before(pos) {
            return None;
        }
        let alert_id: Arc<str> = value.get("alert_id")?.as_str()?.into();
        let unit_id: Arc<str> = value.get("unit_id")?.as_str()?.into();
        value.get("status")?.as_str()?;
        self.cursor.advance(pos);
        let doc = Doc {
            kind: DocKind::Ack,
            pos,
            alert_id: alert_id.clone(),
            unit_id: Some(unit_id.clone()),
            units: vec![unit_id].into(),
            closed: false,
            value: Arc::new(value),
            cursor: self.cursor.clone(),
        };
        let acks = self.acks.entry(alert_id).or_default();
        acks.push(doc.value.clone());
        if acks.len() > MAX_ACKS_PER_ALERT {
            acks.remove(0);
        }
        if self.acks.len() > CLOSED_CAPACITY * 4 {
            // Answers to alerts long gone: keep the ones of alerts still known.
            let known: std::collections::HashSet<Arc<str>> = self
                .open
                .keys()
                .chain(self.closed.keys())
                .cloned()
                .collect();
            self.acks.retain(|k, _| known.contains(k));
        }
        self.log.push_back(doc.clone());
        while self.log.len() > LOG_CAPACITY {
            self.log.pop_front();
        }
        Some(doc)
    }

    /// A unit's position report (`patrol-positions`). Returns its new state.
    pub fn apply_unit(&mut self, value: &Value) -> Option<UnitState> {
        let unit_id = value.get("unit_id")?.as_str()?.to_owned();
        let state = UnitState {
            alert_id: self.assignment_of(&unit_id),
            lon: value.get("lon")?.as_f64()?,
            lat: value.get("lat")?.as_f64()?,
            status: value.get("status")?.as_str()?.to_owned(),
            speed_kmh: value.get("speed_kmh").and_then(Value::as_f64),
            ts: value.get("ts").cloned().unwrap_or(Value::Null),
            unit_id: unit_id.clone(),
        };
        self.units.insert(unit_id, state.clone());
        Some(state)
    }

    /// A weather station's observation (`weather-observations`); the latest per station
    /// by `ts` is kept. Returns it when it is the station's latest.
    pub fn apply_station(&mut self, value: Value) -> Option<Value> {
        let id = value.get("station_id")?.as_str()?.to_owned();
        let ts = |v: &Value| v.get("ts").and_then(Value::as_i64);
        if let Some(old) = self.stations.get(&id) {
            if let (Some(a), Some(b)) = (ts(old), ts(&value)) {
                if b < a {
                    return None;
                }
            }
        }
        self.stations.insert(id, value.clone());
        Some(value)
    }

    pub fn stations(&self) -> Vec<Value> {
        self.stations.values().cloned().collect()
    }

    /// A unit's state with its assignment as it stands now (after an alert document).
    pub fn refreshed_unit(&mut self, unit_id: &str) -> Option<UnitState> {
        let alert_id = self.assignment_of(unit_id);
        let state = self.units.get_mut(unit_id)?;
        if state.alert_id == alert_id {
            return None;
        }
        state.alert_id = alert_id;
        Some(state.clone())
    }

    /// The open alert whose latest document is addressed to `unit_id`.
    fn assignment_of(&self, unit_id: &str) -> Option<String> {
        self.open
            .values()
            .filter_map(|docs| docs.last())
            .filter(|d| d.unit_id.as_deref() == Some(unit_id))
            .max_by_key(|d| d.pos)
            .map(|d| d.alert_id.to_string())
    }

    /// The open alerts' latest documents, each with `history` (the earlier ones).
    pub fn open_alerts(&self) -> Vec<Value> {
        let mut docs: Vec<&Vec<Doc>> = self.open.values().collect();
        docs.sort_by_key(|d| d.first().map(|d| d.pos));
        docs.into_iter()
            .filter_map(|docs| {
                let (last, earlier) = docs.split_last()?;
                let mut v = (*last.value).clone();
                let history: Vec<Value> = earlier.iter().map(|d| (*d.value).clone()).collect();
                let acks: Vec<Value> = self
                    .acks
                    .get(&last.alert_id)
                    .map(|a| a.iter().map(|v| (**v).clone()).collect())
                    .unwrap_or_default();
                if let Value::Object(m) = &mut v {
                    m.insert("history".into(), Value::Array(history));
                    m.insert("acks".into(), Value::Array(acks));
                }
                Some(v)
            })
            .collect()
    }

    pub fn units(&self) -> Vec<UnitState> {
        self.units.values().cloned().collect()
    }

    pub fn unit(&self, unit_id: &str) -> Option<&UnitState> {
        self.units.get(unit_id)
    }

    /// The latest document of an alert, open or recently closed.
    pub fn latest(&self, alert_id: &str) -> Option<&Doc> {
        self.open
            .get(alert_id)
            .and_then(|d| d.last())
            .or_else(|| self.closed.get(alert_id))
    }

    /// Whether `unit_id` may answer `alert_id`: the alert's latest document (open, or
    /// closed a moment ago, for a late `resolved`) is addressed to that unit.
    pub fn addressed_to(&self, alert_id: &str, unit_id: &str) -> bool {
        self.latest(alert_id)
            .is_some_and(|d| d.unit_id.as_deref() == Some(unit_id))
    }

    /// A unit's dispatches: the latest document per alert addressed to it, newest first;
    /// the one it holds now separately.
    pub fn dispatches_of(&self, unit_id: &str) -> (Option<Value>, Vec<Value>) {
        let current = self.assignment_of(unit_id);
        let mut latest: HashMap<&str, &Doc> = HashMap::new();
        for d in self
            .log
            .iter()
            .filter(|d| d.kind == DocKind::Alert && d.unit_id.as_deref() == Some(unit_id))
        {
            latest.insert(&d.alert_id, d);
        }
        let mut earlier: Vec<&Doc> = latest
            .into_values()
            .filter(|d| Some(&*d.alert_id) != current.as_deref())
            .collect();
        earlier.sort_by_key(|d| std::cmp::Reverse(d.pos));
        let current = current
            .and_then(|id| self.latest(&id))
            .map(|d| (*d.value).clone());
        (
            current,
            earlier.into_iter().map(|d| (*d.value).clone()).collect(),
        )
    }

    /// Documents a page has not seen: after `cursor`, or (no cursor) every document of
    /// the open alerts. `unit` limits them to what that unit may see ([`Doc::for_unit`]).
    pub fn catch_up(&self, cursor: Option<&Cursor>, unit: Option<&str>) -> Vec<Doc> {
        let mine = |d: &&Doc| unit.map_or(true, |u| d.for_unit(u));
        match cursor {
            Some(c) => self
                .log
                .iter()
                .filter(|d| c.before(d.pos))
                .filter(mine)
                .cloned()
                .collect(),
            None => {
                let mut docs: Vec<Doc> =
                    self.open.values().flatten().filter(mine).cloned().collect();
                docs.sort_by_key(|d| d.pos);
                // Then the open alerts' answers, from the log (what is still there).
                docs.extend(
                    self.log
                        .iter()
                        .filter(|d| d.kind == DocKind::Ack && self.open.contains_key(&d.alert_id))
                        .filter(mine)
                        .cloned(),
                );
                docs
            }
        }
    }

    /// Where the picture stands in the alerts stream.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(id: &str, status: &str, unit: Option<&str>) -> Value {
        json!({
            "alert_id": id, "status": status, "kind": "pedestrian",
            "dispatch": unit.map(|u| json!({"unit_id": u, "attempt": 1})),
        })
    }

    fn at(partition: i32, offset: i64) -> StreamPos {
        StreamPos { partition, offset }
    }

    #[test]
    fn cursors_survive_text_and_refuse_anything_else() {
        let mut c = Cursor::default();
        c.advance(at(0, 12));
        c.advance(at(3, 7));
        c.advance(at(0, 5));
        assert_eq!(c.encode(), "0:12,3:7");
        assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()));
        assert_eq!(Cursor::decode(""), Some(Cursor::default()));
        assert_eq!(Cursor::decode("0:x"), None);
        assert_eq!(Cursor::decode("12"), None);
        assert!(c.before(at(0, 13)) && !c.before(at(0, 12)) && c.before(at(1, 0)));
    }

    #[test]
    fn open_alerts_carry_their_history_and_leave_when_cleared() {
        let mut p = Picture::default();
        p.apply_alert(at(0, 0), doc("a", "new", Some("P-1")));
        p.apply_alert(at(0, 1), doc("b", "new", None));
        p.apply_alert(at(0, 2), doc("a", "update", Some("P-1")));
        // Read again (a rebalance, a restart's window): ignored.
        assert!(p.apply_alert(at(0, 1), doc("b", "new", None)).is_none());
        let open = p.open_alerts();
        assert_eq!(open.len(), 2);
        assert_eq!(open[0]["status"], "update");
        assert_eq!(open[0]["history"].as_array().unwrap().len(), 1);
        p.apply_alert(at(0, 3), doc("a", "cleared", Some("P-1")));
        assert_eq!(p.open_alerts().len(), 1);
        // Closed a moment ago: its unit may still send the outcome.
        assert!(p.addressed_to("a", "P-1"));
        assert!(!p.addressed_to("a", "P-2") && !p.addressed_to("b", "P-1"));
    }

    #[test]
    fn a_page_resumes_after_its_cursor_and_a_unit_sees_only_its_own() {
        let mut p = Picture::default();
        let first = p
            .apply_alert(at(0, 0), doc("a", "new", Some("P-1")))
            .unwrap();
        p.apply_alert(at(1, 0), doc("b", "new", Some("P-2")));
        p.apply_alert(at(0, 1), doc("a", "redispatch", Some("P-2")));
        let after: Vec<_> = p
            .catch_up(Some(&first.cursor), None)
            .iter()
            .map(|d| d.pos)
            .collect();
        assert_eq!(after, vec![at(1, 0), at(0, 1)]);
        let for_p2 = p.catch_up(None, Some("P-2"));
        assert_eq!(for_p2.len(), 2);
        // P-1 sees that a went to P-2, and nothing of b.
        let for_p1: Vec<_> = p
            .catch_up(None, Some("P-1"))
            .iter()
            .map(|d| d.pos)
            .collect();
        assert_eq!(for_p1, vec![at(0, 0), at(0, 1)]);
        // The cursor as the page got it back: nothing is missed, nothing repeated.
        let c = Cursor::decode(&first.cursor.encode()).unwrap();
        assert_eq!(p.catch_up(Some(&c), None).len(), 2);
    }

    #[test]
    fn a_unit_shows_the_alert_it_is_addressed_to() {
        let mut p = Picture::default();
        p.apply_unit(&json!({"unit_id":"P-1","lon":106.0,"lat":27.0,"status":"available","ts":1}));
        p.apply_alert(at(0, 0), doc("a", "new", Some("P-1")));
        let s = p.refreshed_unit("P-1").unwrap();
        assert_eq!(s.alert_id.as_deref(), Some("a"));
        let (current, earlier) = p.dispatches_of("P-1");
        assert_eq!(current.unwrap()["alert_id"], "a");
        assert!(earlier.is_empty());
        p.apply_alert(at(0, 1), doc("a", "redispatch", Some("P-2")));
        assert_eq!(p.refreshed_unit("P-1").unwrap().alert_id, None);
        let (current, earlier) = p.dispatches_of("P-1");
        assert!(current.is_none());
        assert_eq!(earlier.len(), 1);
    }

    #[test]
    fn answers_join_their_alert_and_resume_with_the_same_cursor() {
        let mut p = Picture::default();
        let first = p
            .apply_alert(at(0, 0), doc("a", "new", Some("P-1")))
            .unwrap();
        let ack = json!({"alert_id":"a","unit_id":"P-1","status":"accepted","ts":1});
        let logged = p.apply_ack(StreamPos::ack(0, 0), ack.clone()).unwrap();
        assert_eq!(logged.kind, DocKind::Ack);
        assert!(
            p.apply_ack(StreamPos::ack(0, 0), ack).is_none(),
            "read again"
        );
        p.apply_ack(
            StreamPos::ack(1, 0),
            json!({"alert_id":"a","unit_id":"P-2","status":"declined","ts":2}),
        );
        let open = p.open_alerts();
        assert_eq!(open[0]["acks"].as_array().unwrap().len(), 2);
        // After the alert's first document: both answers; P-1 sees its own only.
        let c = Cursor::decode(&first.cursor.encode()).unwrap();
        assert_eq!(p.catch_up(Some(&c), None).len(), 2);
        assert_eq!(p.catch_up(Some(&c), Some("P-1")).len(), 1);
        assert_eq!(
            Cursor::decode(&logged.cursor.encode()),
            Some(logged.cursor.clone())
        );
        // A fresh page: the alert's document, then its answers.
        let kinds: Vec<DocKind> = p.catch_up(None, None).iter().map(|d| d.kind).collect();
        assert_eq!(kinds, [DocKind::Alert, DocKind::Ack, DocKind::Ack]);
        // Only alert documents make a unit's dispatches.
        assert!(p.dispatches_of("P-2").0.is_none());
    }
}
