//! Every Prometheus metric roadwatch exports, in one place: fixed label sets, base units,
//! and never a plate, id or coordinate as a label (STYLE.md). Label values come from
//! closed enums (stream, kind, severity, status, reason, stage, outcome).
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::core::dispatch::DispatchStats;
use crate::core::engine::EngineStats;
use crate::core::lifecycle::{ActionResult, LifecycleEvent, Step};
use crate::core::model::{
    ActionKind, AlertKind, AlertStatus, Outcome, RejectReason, Severity, Stream,
};

/// Latency buckets from 1 ms to 10 s (issue 7).
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The incident timeline is minutes, not milliseconds (FHWA's measures; NFPA 1225 asks
/// 90% of alarms processed within 60 s).
const TIMELINE_BUCKETS: [f64; 12] = [
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 7200.0,
];
/// Finer buckets for per-record stages (sub-microsecond to 100 ms).
const STAGE_BUCKETS: [f64; 12] = [
    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 5e-5, 1e-4, 1e-3, 1e-2, 1e-1,
];

/// Processing stages timed by the adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Decode,
    /// The engine's work on a decoded record: locate, rules and dispatch, timed as one
    /// because the pure core does them in one call.
    Detect,
    Produce,
    Commit,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Decode, Stage::Detect, Stage::Produce, Stage::Commit];
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Detect => "detect",
            Stage::Produce => "produce",
            Stage::Commit => "commit",
        }
    }
}

/// Dispatch outcomes, the `outcome` label of `roadwatch_dispatch_total`.
pub const DISPATCH_OUTCOMES: [&str; 13] = [
    "assigned",
    "redispatched",
    "escalated",
    "ack_timeout",
    "ack_accepted",
    "ack_declined",
    "ack_arrived",
    "ack_resolved",
    "ack_unknown_alert",
    "ack_wrong_unit",
    "booked_elsewhere",
    "preempted",
    "operator_assigned",
];

pub struct Metrics {
    registry: Registry,
    pub event_to_alert: HistogramVec,
    pub stage: HistogramVec,
    pub records: IntCounterVec,
    pub alerts: IntCounterVec,
    pub dispatch: IntCounterVec,
    pub dlq: IntCounterVec,
    pub late_records: IntCounter,
    /// The event-time merge stopped waiting for a partition (`roadwatch run`).
    pub merge_gave_up: IntCounterVec,
    /// Detector-state rebuilds (start-up, rebalances, rewinds): each one re-reads the
    /// input window, so a rising rate means an unsettled group.
    pub state_rebuilds: IntCounter,
    pub consumer_lag: IntGaugeVec,
    pub transaction_commit: HistogramVec,
    pub engine_open_incidents: IntGauge,
    pub engine_tracked_plates: IntGauge,
    pub engine_evicted_plates: IntCounter,
    pub engine_units: IntGauge,
    pub engine_open_assignments: IntGauge,
    pub engine_weather_stations: IntGauge,
    pub engine_silent_weather_stations: IntGauge,
    pub escalated_unacknowledged: IntGauge,
    pub alert_outcomes: IntCounterVec,
    pub alert_timeline: HistogramVec,
    pub operator_actions: IntCounterVec,
    /// `roadwatch console` (and the demo's console): sign-ins by result, live pages.
    pub console_logins: IntCounterVec,
    pub console_event_streams: IntGauge,
    /// Last dispatch counters seen, to turn the engine's totals into increments.
    last_dispatch: std::sync::Mutex<DispatchStats>,
    /// Last evicted-plates total seen (an engine rebuilt after a rebalance starts at 0).
    last_evicted: std::sync::atomic::AtomicU64,
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("valid histogram")
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid gauge")
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics {
            registry: Registry::new(),
            event_to_alert: histogram(
                "roadwatch_event_to_alert_seconds",
                "Event time of the triggering record to the alert produced (committed under exactly-once).",
                &["kind"],
                &LATENCY_BUCKETS,
            ),
            stage: histogram(
                "roadwatch_stage_seconds",
                "Time spent per record (decode, locate, detect, dispatch) or per batch (produce, commit).",
                &["stage"],
                &STAGE_BUCKETS,
            ),
            records: counter("roadwatch_records_total", "Valid input records accepted, by stream.", &["stream"]),
            alerts: counter(
                "roadwatch_alerts_total",
                "Alert documents produced, by kind, severity and status.",
                &["kind", "severity", "status"],
            ),
            dispatch: counter("roadwatch_dispatch_total", "Dispatch decisions and acks, by outcome.", &["outcome"]),
            dlq: counter("roadwatch_dlq_total", "Records sent to the dead-letter topic, by reason.", &["reason"]),
            late_records: IntCounter::new(
                "roadwatch_late_records_total",
                "Records older than the allowed lateness behind the event clock, dropped.",
            )
            .expect("valid counter"),
            merge_gave_up: counter(
                "roadwatch_merge_gave_up_total",
                "Times the event-time merge stopped waiting for a partition: behind its end but silent, or its end could not be looked up.",
                &["reason"],
            ),
            state_rebuilds: IntCounter::new(
                "roadwatch_state_rebuilds_total",
                "Detector-state rebuilds from the input window (start-up, rebalance, rewind).",
            )
            .expect("valid counter"),
            consumer_lag: IntGaugeVec::new(
                Opts::new("roadwatch_consumer_lag_records", "Consumer lag per partition (librdkafka statistics)."),
                &["topic", "partition"],
            )
            .expect("valid gauge"),
            transaction_commit: histogram(
                "roadwatch_transaction_commit_seconds",
                "Duration of a transaction commit (exactly-once) or offset commit (at-least-once).",
                &["guarantee"],
                &LATENCY_BUCKETS,
            ),
            engine_open_incidents: gauge("roadwatch_engine_open_incidents", "Open pedestrian incidents."),
            engine_tracked_plates: gauge("roadwatch_engine_tracked_plates", "Plates with ride-hailing state."),
            engine_evicted_plates: IntCounter::new(
                "roadwatch_engine_evicted_plates_total",
                "Plates whose ride-hailing state was dropped to stay within ride_hailing.max_tracked_plates.",
            )
            .expect("valid metric"),
            engine_units: gauge("roadwatch_engine_units", "Patrol units known to the dispatcher."),
            engine_open_assignments: gauge("roadwatch_engine_open_assignments", "Alerts assigned to a unit and not closed."),
            engine_weather_stations: gauge("roadwatch_engine_weather_stations", "Weather stations with state."),
            engine_silent_weather_stations: gauge(
                "roadwatch_engine_silent_weather_stations",
                "Weather stations with no observation for weather.silent_after_s (their alerts stay open).",
            ),
            escalated_unacknowledged: gauge(
                "roadwatch_escalated_unacknowledged_alerts",
                "Open escalated alerts no operator has acknowledged.",
            ),
            alert_outcomes: counter(
                "roadwatch_alert_outcomes_total",
                "Alerts ended, by kind, subtype and outcome (unknown: nobody said).",
                &["kind", "subtype", "outcome"],
            ),
            alert_timeline: histogram(
                "roadwatch_alert_timeline_seconds",
                "Event time from an alert's first document to its first acknowledgement, acceptance, arrival and resolution.",
                &["kind", "step"],
                &TIMELINE_BUCKETS,
            ),
            operator_actions: counter(
                "roadwatch_operator_actions_total",
                "Operator actions, by action and result (applied, not_open here, refused).",
                &["action", "result"],
            ),
            console_logins: counter(
                "roadwatch_console_logins_total",
                "Console sign-ins by result (ok, failed, limited: refused after too many failures).",
                &["result"],
            ),
            console_event_streams: gauge(
                "roadwatch_console_event_streams",
                "Pages connected to the console's live events (/api/events).",
            ),
            last_dispatch: std::sync::Mutex::new(DispatchStats::default()),
            last_evicted: std::sync::atomic::AtomicU64::new(0),
        };
        let r = &m.registry;
        let all: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.event_to_alert.clone()),
            Box::new(m.stage.clone()),
            Box::new(m.records.clone()),
            Box::new(m.alerts.clone()),
            Box::new(m.dispatch.clone()),
            Box::new(m.dlq.clone()),
            Box::new(m.late_records.clone()),
            Box::new(m.merge_gave_up.clone()),
            Box::new(m.state_rebuilds.clone()),
            Box::new(m.consumer_lag.clone()),
            Box::new(m.transaction_commit.clone()),
            Box::new(m.engine_open_incidents.clone()),
            Box::new(m.engine_tracked_plates.clone()),
            Box::new(m.engine_evicted_plates.clone()),
            Box::new(m.engine_units.clone()),
            Box::new(m.engine_open_assignments.clone()),
            Box::new(m.engine_weather_stations.clone()),
            Box::new(m.engine_silent_weather_stations.clone()),
            Box::new(m.escalated_unacknowledged.clone()),
            Box::new(m.alert_outcomes.clone()),
            Box::new(m.alert_timeline.clone()),
            Box::new(m.operator_actions.clone()),
            Box::new(m.console_logins.clone()),
            Box::new(m.console_event_streams.clone()),
        ];
        for c in all {
            r.register(c).expect("unique metric names");
        }
        m.preregister();
        m
    }

    /// Creates every label combination up front so dashboards see zeros, not gaps.
    fn preregister(&self) {
        for s in Stream::ALL {
            self.records.with_label_values(&[s.as_str()]);
        }
        for r in RejectReason::ALL {
            self.dlq.with_label_values(&[r.as_str()]);
        }
        for k in AlertKind::ALL {
            self.event_to_alert.with_label_values(&[k.as_str()]);
            for s in Severity::ALL {
                for st in AlertStatus::ALL {
                    self.alerts
                        .with_label_values(&[k.as_str(), s.as_str(), st.as_str()]);
                }
            }
        }
        for s in Stage::ALL {
            self.stage.with_label_values(&[s.as_str()]);
        }
        for reason in ["behind", "unconfirmed"] {
            self.merge_gave_up.with_label_values(&[reason]);
        }
        let subtypes: [(AlertKind, &[&str]); 3] = [
            (
                AlertKind::Pedestrian,
                &["pedestrian", "bicycle", "tricycle"],
            ),
            (AlertKind::IllegalRideHailing, &["watchlist", "pattern"]),
            (AlertKind::SevereWeather, &["fog", "ice", "wind", "rain"]),
        ];
        for (k, subs) in subtypes {
            for sub in subs {
                for o in Outcome::ALL {
                    self.alert_outcomes
                        .with_label_values(&[k.as_str(), sub, o.as_str()]);
                }
            }
        }
        for k in AlertKind::ALL {
            for step in Step::ALL {
                self.alert_timeline
                    .with_label_values(&[k.as_str(), step.as_str()]);
            }
        }
        for a in ActionKind::ALL {
            for r in ActionResult::ALL {
                self.operator_actions
                    .with_label_values(&[a.as_str(), r.as_str()]);
            }
        }
        for o in DISPATCH_OUTCOMES {
            self.dispatch.with_label_values(&[o]);
        }
        for g in ["exactly_once", "at_least_once"] {
            self.transaction_commit.with_label_values(&[g]);
        }
        for r in ["ok", "failed", "limited"] {
            self.console_logins.with_label_values(&[r]);
        }
    }

    /// Event time of the triggering record → the alert out (produced, or committed
    /// under exactly-once). Clock skew between devices and us can make it negative.
    pub fn observe_latency(&self, kind: AlertKind, latency_s: f64) {
        self.event_to_alert
            .with_label_values(&[kind.as_str()])
            .observe(latency_s.max(0.0));
    }

    pub fn observe_stage(&self, stage: Stage, seconds: f64) {
        self.stage
            .with_label_values(&[stage.as_str()])
            .observe(seconds);
    }

    pub fn record(&self, stream: Stream) {
        self.records.with_label_values(&[stream.as_str()]).inc();
    }

    pub fn dlq(&self, reason: &str) {
        self.dlq.with_label_values(&[reason]).inc();
    }

    /// Gauges and dispatch counters from the engine's own counters.
    pub fn update_engine(&self, stats: &EngineStats, dispatch: &DispatchStats) {
        self.engine_open_incidents.set(stats.open_incidents as i64);
        self.engine_tracked_plates.set(stats.tracked_plates as i64);
        let before = self
            .last_evicted
            .swap(stats.evicted_plates, std::sync::atomic::Ordering::Relaxed);
        // A smaller total is a new engine (a rebuild): all of it is new.
        self.engine_evicted_plates.inc_by(
            stats
                .evicted_plates
                .checked_sub(before)
                .unwrap_or(stats.evicted_plates),
        );
        self.engine_units.set(stats.units as i64);
        self.engine_open_assignments
            .set(stats.open_assignments as i64);
        self.engine_weather_stations
            .set(stats.weather_stations as i64);
        self.engine_silent_weather_stations
            .set(stats.silent_weather_stations as i64);
        self.escalated_unacknowledged
            .set(stats.escalated_unacknowledged as i64);
        let mut last = self.last_dispatch.lock().expect("not poisoned");
        let pairs = [
            ("assigned", dispatch.assigned, last.assigned),
            ("redispatched", dispatch.redispatched, last.redispatched),
            ("escalated", dispatch.escalated, last.escalated),
            ("ack_timeout", dispatch.ack_timeouts, last.ack_timeouts),
            ("ack_accepted", dispatch.acks_accepted, last.acks_accepted),
            ("ack_declined", dispatch.acks_declined, last.acks_declined),
            ("ack_arrived", dispatch.acks_arrived, last.acks_arrived),
            ("ack_resolved", dispatch.acks_resolved, last.acks_resolved),
            (
                "ack_unknown_alert",
                dispatch.acks_unknown_alert,
                last.acks_unknown_alert,
            ),
            (
                "ack_wrong_unit",
                dispatch.acks_wrong_unit,
                last.acks_wrong_unit,
            ),
            (
                "booked_elsewhere",
                dispatch.booked_elsewhere,
                last.booked_elsewhere,
            ),
            ("preempted", dispatch.preempted, last.preempted),
            (
                "operator_assigned",
                dispatch.operator_assigned,
                last.operator_assigned,
            ),
        ];
        for (outcome, now, before) in pairs {
            if now > before {
                self.dispatch
                    .with_label_values(&[outcome])
                    .inc_by(now - before);
            }
        }
        *last = dispatch.clone();
    }

    /// What the alert lifecycle reported (outcomes, timeline, operator actions).
    pub fn lifecycle(&self, events: &[LifecycleEvent]) {
        for e in events {
            match e {
                LifecycleEvent::Outcome {
                    kind,
                    subtype,
                    outcome,
                } => self
                    .alert_outcomes
                    .with_label_values(&[kind.as_str(), subtype, outcome.as_str()])
                    .inc(),
                LifecycleEvent::Step {
                    kind,
                    step,
                    seconds,
                } => self
                    .alert_timeline
                    .with_label_values(&[kind.as_str(), step.as_str()])
                    .observe(*seconds),
                LifecycleEvent::Action { action, result } => self
                    .operator_actions
                    .with_label_values(&[action.as_str(), result.as_str()])
                    .inc(),
            }
        }
    }

    /// A rebuilt engine's counters start from what its replay did (output suppressed):
    /// only what it does from now on is counted.
    pub fn rebase_dispatch(&self, dispatch: &DispatchStats) {
        *self.last_dispatch.lock().expect("not poisoned") = dispatch.clone();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
