//! The decision half of the engine: flat dispatch and the lifecycle book. Its state is
//! about every unit and every open alert, so under scale-out it is one owner per dispatch
//! region (docs/SCALING.md). It takes built alerts from detection, patrol positions,
//! acks and operator actions, and hands out the documents that leave the engine.
use crate::dispatch::{DispatchStats, Dispatcher};
use crate::lifecycle::{ActionResult, Book, LifecycleEvent, Step};
use crate::model::{
    AckStatus, Action, Alert, ClosedBy, DispatchAck, EventTime, EventTimestamp, OperatorAction,
    PatrolPosition, UtcOffset,
};
use crate::roads::RoadNetwork;
use crate::settings::EngineSettings;

pub struct Decision {
    dispatcher: Dispatcher,
    book: Book,
    utc_offset: UtcOffset,
    /// Documents decided, on their way through the book to the caller.
    sent: Vec<Alert>,
}

impl Decision {
    pub fn new(settings: &EngineSettings, roads: &RoadNetwork) -> Self {
        let output = settings.output.clone();
        Decision {
            book: Book::new(
                output.utc_offset,
                settings.lifecycle.unattended_close_ms,
                settings.dispatch.busy_after_arrived_ms,
            ),
            utc_offset: output.utc_offset,
            dispatcher: Dispatcher::new(settings.dispatch.clone(), output, roads),
            sent: Vec::new(),
        }
    }

    /// A detector's alert, built, decided at `now`: dispatched (or escalated).
    pub fn on_alert(&mut self, alert: Alert, now: EventTime, roads: &RoadNetwork) {
        self.dispatcher.on_alert(alert, now, roads, &mut self.sent);
    }

    pub fn on_position(&mut self, p: &PatrolPosition, roads: &RoadNetwork) {
        self.dispatcher.on_position(p, roads);
    }

    /// A unit's answer. Returns the alert it ended (`resolved`), for detection to forget.
    pub fn on_ack<'a>(
        &mut self,
        ack: &'a DispatchAck,
        now: EventTime,
        roads: &RoadNetwork,
    ) -> Option<&'a str> {
        let applied = self.dispatcher.on_ack(ack, now, roads, &mut self.sent);
        let id = &ack.alert_id;
        match applied {
            Some(AckStatus::Accepted) => self.book.step(id, Step::Accepted, ack.ts),
            Some(AckStatus::Arrived) => {
                self.book.step(id, Step::Accepted, ack.ts);
                self.book.step(id, Step::Arrived, ack.ts);
            }
            Some(AckStatus::Resolved) => {
                if let Some(doc) = self.book.resolved(id, &ack.unit_id, ack.outcome, now) {
                    self.sent.push(doc);
                    return Some(id);
                }
            }
            Some(AckStatus::Declined) | None => {}
        }
        None
    }

    /// An operator's action on an alert open here (others are counted and ignored: with
    /// several instances the one holding the alert applies it). Returns the alert it
    /// closed, for detection to forget.
    pub fn on_action<'a>(
        &mut self,
        a: &'a OperatorAction,
        now: EventTime,
        roads: &RoadNetwork,
    ) -> Option<&'a str> {
        let kind = a.action.kind();
        if self.book.open(&a.alert_id).is_none() {
            self.book.action(kind, ActionResult::NotOpen);
            return None;
        }
        let mut closed = None;
        let result = match &a.action {
            Action::Acknowledge => {
                if let Some(doc) = self.book.acknowledge(&a.alert_id, &a.operator_id, now) {
                    self.sent.push(doc);
                }
                ActionResult::Applied
            }
            Action::Note { text } => {
                self.book.note(&a.alert_id, &a.operator_id, text, now);
                ActionResult::Applied
            }
            Action::Close { outcome } => {
                let by = ClosedBy::Operator {
                    operator_id: a.operator_id.clone(),
                    ts: EventTimestamp::new(now, self.utc_offset),
                };
                match self.book.closing(&a.alert_id, *outcome, by, now) {
                    Some(doc) => {
                        self.dispatcher.close(&a.alert_id);
                        self.sent.push(doc);
                        closed = Some(a.alert_id.as_str());
                        ActionResult::Applied
                    }
                    None => ActionResult::NotOpen,
                }
            }
            Action::Assign { unit_id } => {
                let last = self
                    .book
                    .open(&a.alert_id)
                    .cloned()
                    .expect("open: checked above");
                if self.dispatcher.assign_to(
                    last,
                    unit_id,
                    &a.operator_id,
                    now,
                    roads,
                    &mut self.sent,
                ) {
                    ActionResult::Applied
                } else {
                    ActionResult::Refused
                }
            }
        };
        self.book.action(kind, result);
        closed
    }

    /// Every dispatch and book timer due by `now`: ack time-outs, busy periods, unattended
    /// closes.
    pub fn on_time(&mut self, now: EventTime, roads: &RoadNetwork) {
        self.dispatcher.on_time(now, roads, &mut self.sent);
        let dispatcher = &self.dispatcher;
        for doc in self.book.on_time(now, &|id| dispatcher.holds(id)) {
            self.sent.push(doc);
        }
    }

    pub fn next_deadline(&self) -> Option<EventTime> {
        [self.dispatcher.next_deadline(), self.book.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether a unit has accepted the alert (detection's one question).
    pub fn accepted(&self, alert_id: &str) -> bool {
        self.dispatcher.accepted(alert_id)
    }

    /// Every decided document through the book (handling fields, outcome) to the caller;
    /// `now` is when they were decided.
    pub fn emit(&mut self, now: EventTime, out: &mut Vec<Alert>) {
        for mut alert in self.sent.drain(..) {
            self.book.stamp(&mut alert, now);
            out.push(alert);
        }
    }

    pub fn take_lifecycle_events(&mut self) -> Vec<LifecycleEvent> {
        self.book.take_events()
    }

    pub fn dispatch_stats(&self) -> &DispatchStats {
        self.dispatcher.stats()
    }

    pub fn units(&self) -> usize {
        self.dispatcher.units()
    }

    pub fn open_assignments(&self) -> usize {
        self.dispatcher.open_assignments()
    }

    pub fn escalated_unacknowledged(&self) -> usize {
        self.book.escalated_unacknowledged()
    }
}
