//! The alert's life after its detector raised it (docs/LIFECYCLE.md): what the command
//! center and the units did to it, and how it ended. Every document the engine emits
//! passes through [`Book::stamp`], which adds the handling fields of CONTRACT section 3
//! (`acknowledged_by`, `notes`, and on the last document `outcome`, `closed_by`), so the
//! detectors and the dispatcher need not know about them.
//!
//! - An operator's `acknowledge` re-sends the alert as an `update` with `acknowledged_by`;
//!   a `note` is kept and goes out with the next document; `close` ends the alert with
//!   its outcome (the engine releases the unit and tells the detector); `assign` is the
//!   dispatcher's.
//! - A unit's `resolved` ends a pedestrian or ride-hailing alert with the unit's outcome.
//!   A weather alert stays while the weather does: the outcome is kept for its `cleared`.
//!   A `resolved` after the alert already ended (an accepted incident clears when the
//!   person is out of sight for 120 s, "its unit still reports") re-sends the `cleared`
//!   with the unit's outcome: the alert's last document always says how it ended.
//! - An alert whose condition has no end of its own (ride-hailing) and that no unit
//!   holds closes `unknown` after `unattended_close` without a document.
//! - Outcomes are counted once per alert, when they are final: a known one at once, an
//!   `unknown` when the alert leaves the book (`keep_closed` later) without a late
//!   outcome or a reopening.
//! - The incident timeline (FHWA's measures): seconds of event time from the first
//!   document to the first acknowledgement, acceptance, arrival and resolution.
use std::collections::BTreeMap;

use super::model::{
    ActionKind, Alert, AlertKind, AlertStatus, ClosedBy, EventTime, EventTimestamp, OperatorStamp,
    Outcome, UtcOffset,
};

/// A step of the incident timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Acknowledged,
    Accepted,
    Arrived,
    Resolved,
}

impl Step {
    pub const ALL: [Step; 4] = [
        Step::Acknowledged,
        Step::Accepted,
        Step::Arrived,
        Step::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Acknowledged => "acknowledged",
            Step::Accepted => "accepted",
            Step::Arrived => "arrived",
            Step::Resolved => "resolved",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// What became of an operator action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionResult {
    Applied,
    /// The alert is not open here (closed, unknown, or held by another instance).
    NotOpen,
    /// Well-formed but not applicable (e.g. `assign` to an unknown or off-duty unit).
    Refused,
}

impl ActionResult {
    pub const ALL: [ActionResult; 3] = [
        ActionResult::Applied,
        ActionResult::NotOpen,
        ActionResult::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionResult::Applied => "applied",
            ActionResult::NotOpen => "not_open",
            ActionResult::Refused => "refused",
        }
    }
}

/// For the adapter's metrics: the core counts nothing itself.
#[derive(Debug, Clone, PartialEq)]
pub enum LifecycleEvent {
    Outcome {
        kind: AlertKind,
        subtype: String,
        outcome: Outcome,
    },
    Step {
        kind: AlertKind,
        step: Step,
        seconds: f64,
    },
    Action {
        action: ActionKind,
        result: ActionResult,
    },
}

#[derive(Debug, Clone)]
struct Closed {
    at_ms: EventTime,
    counted: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    /// The last document sent, stamped.
    last: Alert,
    detected_ms: EventTime,
    last_ms: EventTime,
    acknowledged: Option<OperatorStamp>,
    notes: Vec<OperatorStamp>,
    /// A weather alert's outcome as its unit reported it, for the `cleared` to come.
    reported: Option<(Outcome, ClosedBy)>,
    closed: Option<Closed>,
    /// Timeline steps already observed (bits of [`Step`]).
    steps: u8,
}

pub struct Book {
    utc_offset: UtcOffset,
    unattended_close_ms: i64,
    keep_closed_ms: i64,
    entries: BTreeMap<String, Entry>,
    events: Vec<LifecycleEvent>,
}

impl Book {
    pub fn new(utc_offset: UtcOffset, unattended_close_ms: i64, keep_closed_ms: i64) -> Self {
        Book {
            utc_offset,
            unattended_close_ms,
            keep_closed_ms,
            entries: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// An entry's last document again, with `status` at `at`.
    fn resend(&self, e: &Entry, status: AlertStatus, at: EventTime) -> Alert {
        let mut doc = e.last.clone();
        doc.status = status;
        doc.event_ts = EventTimestamp::new(at, self.utc_offset);
        doc
    }

    /// Metrics events since the last call.
    pub fn take_events(&mut self) -> Vec<LifecycleEvent> {
        std::mem::take(&mut self.events)
    }

    /// The last document of an alert that is open here.
    pub fn open(&self, alert_id: &str) -> Option<&Alert> {
        self.entries
            .get(alert_id)
            .filter(|e| e.closed.is_none())
            .map(|e| &e.last)
    }

    /// Open escalated alerts nobody has acknowledged: what the command center owes.
    pub fn escalated_unacknowledged(&self) -> usize {
        self.entries
            .values()
            .filter(|e| {
                e.closed.is_none()
                    && e.acknowledged.is_none()
                    && e.last.status == AlertStatus::Escalated
            })
            .count()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds the handling fields to a document on its way out and remembers it.
    pub fn stamp(&mut self, alert: &mut Alert, now: EventTime) {
        let entry = self
            .entries
            .entry(alert.alert_id.clone())
            .or_insert_with(|| Entry {
                last: alert.clone(),
                detected_ms: now,
                last_ms: now,
                acknowledged: None,
                notes: Vec::new(),
                reported: None,
                closed: None,
                steps: 0,
            });
        entry.last_ms = now;
        alert.acknowledged_by = entry.acknowledged.clone();
        alert.notes = entry.notes.clone();
        if alert.status == AlertStatus::Cleared {
            if alert.outcome.is_none() {
                match &entry.reported {
                    Some((o, by)) => {
                        alert.outcome = Some(*o);
                        alert.closed_by = Some(by.clone());
                    }
                    None => alert.outcome = Some(Outcome::Unknown),
                }
            }
            let outcome = alert.outcome.unwrap_or(Outcome::Unknown);
            let known = outcome != Outcome::Unknown;
            let counted = match &entry.closed {
                // A late outcome for an alert closed `unknown`: that one was not counted.
                Some(c) => c.counted,
                None => false,
            };
            if known && !counted {
                self.events.push(LifecycleEvent::Outcome {
                    kind: alert.kind,
                    subtype: alert.subtype.clone(),
                    outcome,
                });
            }
            entry.closed = Some(Closed {
                at_ms: now,
                counted: counted || known,
            });
        } else {
            // Reopened (the walker seen again): no longer closed, nothing was counted.
            entry.closed = None;
            alert.outcome = None;
            alert.closed_by = None;
        }
        entry.last = alert.clone();
    }

    /// An operator acknowledged the alert: its `update`, or `None` when it is not open
    /// here or was acknowledged before.
    pub fn acknowledge(
        &mut self,
        alert_id: &str,
        operator_id: &str,
        at: EventTime,
    ) -> Option<Alert> {
        let entry = self
            .entries
            .get_mut(alert_id)
            .filter(|e| e.closed.is_none())?;
        if entry.acknowledged.is_some() {
            return None;
        }
        entry.acknowledged = Some(OperatorStamp {
            operator_id: operator_id.to_owned(),
            ts: EventTimestamp::new(at, self.utc_offset),
            text: None,
        });
        let doc = self.resend(&self.entries[alert_id], AlertStatus::Update, at);
        self.step(alert_id, Step::Acknowledged, at);
        Some(doc)
    }

    /// An operator's note: kept, and sent with the alert's next document.
    pub fn note(&mut self, alert_id: &str, operator_id: &str, text: &str, at: EventTime) -> bool {
        let Some(entry) = self
            .entries
            .get_mut(alert_id)
            .filter(|e| e.closed.is_none())
        else {
            return false;
        };
        entry.notes.push(OperatorStamp {
            operator_id: operator_id.to_owned(),
            ts: EventTimestamp::new(at, self.utc_offset),
            text: Some(text.to_owned()),
        });
        true
    }

    /// The document that ends an open alert, with its outcome and who ended it.
    pub fn closing(
        &self,
        alert_id: &str,
        outcome: Outcome,
        by: ClosedBy,
        at: EventTime,
    ) -> Option<Alert> {
        let entry = self.entries.get(alert_id).filter(|e| e.closed.is_none())?;
        let mut doc = self.resend(entry, AlertStatus::Cleared, at);
        doc.outcome = Some(outcome);
        doc.closed_by = Some(by);
        Some(doc)
    }

    /// A unit resolved an alert it held. Pedestrian and ride-hailing alerts end here (the
    /// document is returned); a weather alert keeps the outcome for its `cleared`. An
    /// alert that had already ended `unknown` gets its `cleared` again with the outcome.
    pub fn resolved(
        &mut self,
        alert_id: &str,
        unit_id: &str,
        outcome: Option<Outcome>,
        at: EventTime,
    ) -> Option<Alert> {
        self.step(alert_id, Step::Resolved, at);
        let by = ClosedBy::Unit {
            unit_id: unit_id.to_owned(),
            ts: EventTimestamp::new(at, self.utc_offset),
        };
        let entry = self.entries.get_mut(alert_id)?;
        if let Some(closed) = &entry.closed {
            let outcome = outcome?;
            if closed.counted {
                return None;
            }
            let mut doc = entry.last.clone();
            doc.event_ts = EventTimestamp::new(at, self.utc_offset);
            doc.outcome = Some(outcome);
            doc.closed_by = Some(by);
            return Some(doc);
        }
        if entry.last.kind == AlertKind::SevereWeather {
            if let Some(o) = outcome {
                entry.reported = Some((o, by));
            }
            return None;
        }
        self.closing(alert_id, outcome.unwrap_or(Outcome::Unknown), by, at)
    }

    /// A timeline step, observed the first time it happens to an alert.
    pub fn step(&mut self, alert_id: &str, step: Step, at: EventTime) {
        let Some(entry) = self.entries.get_mut(alert_id) else {
            return;
        };
        if entry.steps & step.bit() != 0 {
            return;
        }
        entry.steps |= step.bit();
        self.events.push(LifecycleEvent::Step {
            kind: entry.last.kind,
            step,
            seconds: (at - entry.detected_ms).max(0) as f64 / 1000.0,
        });
    }

    pub fn action(&mut self, action: ActionKind, result: ActionResult) {
        self.events.push(LifecycleEvent::Action { action, result });
    }

    /// The earliest unattended close or departure from the book.
    pub fn next_deadline(&self) -> Option<EventTime> {
        self.entries
            .values()
            .filter_map(|e| match &e.closed {
                Some(c) => Some(c.at_ms + self.keep_closed_ms),
                None if e.last.kind == AlertKind::IllegalRideHailing => {
                    Some(e.last_ms + self.unattended_close_ms)
                }
                None => None,
            })
            .min()
    }

    /// Event time reached `now`: ride-hailing alerts nobody holds close `unknown` after
    /// `unattended_close`; closed alerts leave the book after `keep_closed` (an `unknown`
    /// is counted then). `holds(alert_id)`: a unit is assigned to it.
    pub fn on_time(&mut self, now: EventTime, holds: &dyn Fn(&str) -> bool) -> Vec<Alert> {
        let mut out = Vec::new();
        let mut unattended: Vec<(EventTime, String)> = Vec::new();
        for (id, e) in self.entries.iter_mut() {
            if e.closed.is_some()
                || e.last.kind != AlertKind::IllegalRideHailing
                || e.last_ms + self.unattended_close_ms > now
            {
                continue;
            }
            if holds(id) {
                // A unit is on it: unattended counts from when it is not.
                e.last_ms = now;
            } else {
                unattended.push((e.last_ms + self.unattended_close_ms, id.clone()));
            }
        }
        for (at, id) in unattended {
            out.push(self.resend(&self.entries[&id], AlertStatus::Cleared, at));
        }
        let keep = self.keep_closed_ms;
        let gone: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.closed.as_ref().is_some_and(|c| c.at_ms + keep <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            let e = self.entries.remove(&id).expect("listed above");
            if e.closed.is_some_and(|c| !c.counted) {
                self.events.push(LifecycleEvent::Outcome {
                    kind: e.last.kind,
                    subtype: e.last.subtype.clone(),
                    outcome: Outcome::Unknown,
                });
            }
        }
        out
    }
}
