//! The demo's closing report: each detector scored against the simulator's ground truth
//! (precision, recall, time to alert), dispatch ETAs, throughput and per-record latency.
//! docs/QUALITY.md records it for fixed seeds; the matching rules are stated there.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::core::dispatch::DispatchStats;
use crate::core::engine::EngineStats;
use crate::core::model::{Alert, AlertKind, AlertStatus};
use crate::sim::GroundTruth;

/// A pedestrian alert matches an incident on the same road and direction whose stake
/// range (± this) contains the alert's stake...
const PED_STAKE_SLACK_M: f64 = 600.0;
/// ...raised between the incident's start and its end plus the clear delay.
const PED_TIME_SLACK_MS: i64 = 150_000;
/// A weather alert matches an episode of the same station and subtype that overlaps the
/// alert's first raise, give or take this (readings come every 1–10 min).
const WX_TIME_SLACK_MS: i64 = 30 * 60_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectorScore {
    pub name: &'static str,
    /// Distinct alerts raised (one per alert id).
    pub alerts: usize,
    /// Alerts that match something in the truth.
    pub true_alerts: usize,
    /// Things in the truth that should be found, and how many were.
    pub expected: usize,
    pub found: usize,
    /// Seconds from the truth's start (or first sighting) to the first alert, per find.
    pub time_to_alert_s: Vec<f64>,
}

impl DetectorScore {
    pub fn precision(&self) -> Option<f64> {
        (self.alerts > 0).then(|| self.true_alerts as f64 / self.alerts as f64)
    }
    pub fn recall(&self) -> Option<f64> {
        (self.expected > 0).then(|| self.found as f64 / self.expected as f64)
    }
    pub fn median_time_to_alert_s(&self) -> Option<f64> {
        quantile_s(&self.time_to_alert_s, 0.5)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemoReport {
    pub detectors: Vec<DetectorScore>,
    pub dispatch: DispatchStats,
    /// ETA of each first assignment, seconds.
    pub eta_s: Vec<f64>,
    pub records: u64,
    pub busy: Duration,
    pub late_dropped: u64,
    pub dlq: u64,
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    /// How alerts ended, by each alert's last document (docs/LIFECYCLE.md): `open` when
    /// it has no outcome yet.
    pub outcomes: BTreeMap<(&'static str, &'static str), usize>,
}

/// Counter differences: what happened between two snapshots.
pub fn since(now: &DispatchStats, before: &DispatchStats) -> DispatchStats {
    DispatchStats {
        assigned: now.assigned - before.assigned,
        redispatched: now.redispatched - before.redispatched,
        escalated: now.escalated - before.escalated,
        ack_timeouts: now.ack_timeouts - before.ack_timeouts,
        acks_accepted: now.acks_accepted - before.acks_accepted,
        acks_declined: now.acks_declined - before.acks_declined,
        acks_arrived: now.acks_arrived - before.acks_arrived,
        acks_resolved: now.acks_resolved - before.acks_resolved,
        acks_unknown_alert: now.acks_unknown_alert - before.acks_unknown_alert,
        acks_wrong_unit: now.acks_wrong_unit - before.acks_wrong_unit,
        booked_elsewhere: now.booked_elsewhere - before.booked_elsewhere,
        preempted: now.preempted - before.preempted,
        operator_assigned: now.operator_assigned - before.operator_assigned,
    }
}

fn outcomes(alerts: &[Alert]) -> BTreeMap<(&'static str, &'static str), usize> {
    let mut last: BTreeMap<&str, &Alert> = BTreeMap::new();
    for a in alerts {
        last.insert(&a.alert_id, a);
    }
    let mut out = BTreeMap::new();
    for a in last.values() {
        let outcome = a.outcome.map_or("open", |o| o.as_str());
        *out.entry((a.kind.as_str(), outcome)).or_default() += 1;
    }
    out
}

/// The `q` quantile of a few durations in seconds, to the millisecond.
fn quantile_s(values: &[f64], q: f64) -> Option<f64> {
    let mut h = Histogram::<u64>::new(3).expect("3 significant digits is valid");
    for v in values {
        h.saturating_record((v.max(0.0) * 1000.0).round() as u64);
    }
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
}

/// The `q` quantile of a latency histogram in nanoseconds, as microseconds.
fn quantile_us(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
}

/// The first document of each alert id whose status raises it (new, or escalated when no
/// unit was free): what the command center saw first.
fn raised(alerts: &[Alert], kind: AlertKind) -> Vec<&Alert> {
    let mut seen = BTreeSet::new();
    alerts
        .iter()
        .filter(|a| a.kind == kind && matches!(a.status, AlertStatus::New | AlertStatus::Escalated))
        .filter(|a| seen.insert(a.alert_id.clone()))
        .collect()
}

fn ms(a: &Alert) -> i64 {
    a.event_ts.ms.ms()
}

impl DemoReport {
    pub fn build(
        truth: &GroundTruth,
        alerts: &[Alert],
        engine: &EngineStats,
        dispatch: &DispatchStats,
        records: u64,
        busy: Duration,
        per_record_ns: &Histogram<u64>,
    ) -> DemoReport {
        let mut eta_s = Vec::new();
        let mut assigned = BTreeSet::new();
        for a in alerts {
            if let Some(d) = &a.dispatch {
                if assigned.insert(a.alert_id.clone()) {
                    eta_s.push(d.eta_s as f64);
                }
            }
        }
        DemoReport {
            detectors: vec![
                pedestrian(truth, alerts),
                weather(truth, alerts),
                ride_hailing_pattern(truth, alerts),
                watchlist(truth, alerts),
            ],
            dispatch: dispatch.clone(),
            eta_s,
            records,
            busy,
            late_dropped: engine.late_dropped,
            dlq: truth.expected_dlq.values().sum(),
            latency_p50_us: quantile_us(per_record_ns, 0.5),
            latency_p99_us: quantile_us(per_record_ns, 0.99),
            outcomes: outcomes(alerts),
        }
    }

    pub fn render(&self) -> String {
        let pct = |x: Option<f64>| x.map_or("—".to_owned(), |v| format!("{:.1}%", v * 100.0));
        let secs = |x: Option<f64>| x.map_or("—".to_owned(), |v| format!("{v:.0} s"));
        let mut s = String::new();
        let _ = writeln!(s, "\n== closing report ==");
        let _ = writeln!(
            s,
            "{:<24} {:>7} {:>7} {:>10} {:>9} {:>9} {:>16}",
            "detector", "alerts", "true", "precision", "expected", "recall", "median to alert"
        );
        for d in &self.detectors {
            let _ = writeln!(
                s,
                "{:<24} {:>7} {:>7} {:>10} {:>9} {:>9} {:>16}",
                d.name,
                d.alerts,
                d.true_alerts,
                pct(d.precision()),
                d.expected,
                pct(d.recall()),
                secs(d.median_time_to_alert_s()),
            );
        }
        let _ = writeln!(
            s,
            "dispatch (scored run): {} assigned, {} re-dispatched, {} escalated, {} ack time-outs; ETA median {}, p90 {}",
            self.dispatch.assigned,
            self.dispatch.redispatched,
            self.dispatch.escalated,
            self.dispatch.ack_timeouts,
            secs(quantile_s(&self.eta_s, 0.5)),
            secs(quantile_s(&self.eta_s, 0.9)),
        );
        let rate = self.records as f64 / self.busy.as_secs_f64().max(1e-9);
        let _ = writeln!(
            s,
            "records: {} ({:.0} records/s of engine time; {} deliberately bad, {} dropped as late)",
            self.records, rate, self.dlq, self.late_dropped
        );
        let _ = writeln!(
            s,
            "how alerts ended (the crews' `resolved`, or `unknown`: nobody said):"
        );
        let mut kinds: Vec<&str> = self.outcomes.keys().map(|(k, _)| *k).collect();
        kinds.dedup();
        for kind in kinds {
            let ended: Vec<String> = self
                .outcomes
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|((_, o), n)| format!("{n} {o}"))
                .collect();
            let _ = writeln!(s, "  {kind:<22} {}", ended.join(", "));
        }
        let us = |x: Option<f64>| x.map_or("—".to_owned(), |v| format!("{v:.1} µs"));
        let _ = writeln!(
            s,
            "per-record latency (decode → alert): p50 {}, p99 {}",
            us(self.latency_p50_us),
            us(self.latency_p99_us)
        );
        s
    }
}

fn pedestrian(truth: &GroundTruth, alerts: &[Alert]) -> DetectorScore {
    let raised = raised(alerts, AlertKind::Pedestrian);
    let incidents: Vec<_> = truth
        .pedestrian_incidents
        .iter()
        .filter(|i| i.detectable)
        .collect();
    let matches = |a: &Alert, i: &crate::sim::PedestrianIncident| {
        let (lo, hi) = (
            i.stake_start_m.min(i.stake_end_m),
            i.stake_start_m.max(i.stake_end_m),
        );
        a.location.road_id.as_deref() == Some(i.road_id.as_str())
            && a.location.direction.as_deref() == Some(i.direction)
            && a.location.stake_m.is_some_and(|s| {
                (lo - PED_STAKE_SLACK_M..=hi + PED_STAKE_SLACK_M).contains(&(s as f64))
            })
            && (i.start_ms - 30_000..=i.end_ms + PED_TIME_SLACK_MS).contains(&ms(a))
    };
    let mut score = DetectorScore {
        name: "pedestrian",
        alerts: raised.len(),
        expected: incidents.len(),
        ..Default::default()
    };
    score.true_alerts = raised
        .iter()
        .filter(|a| incidents.iter().any(|i| matches(a, i)))
        .count();
    for i in &incidents {
        if let Some(first) = raised.iter().filter(|a| matches(a, i)).map(|a| ms(a)).min() {
            score.found += 1;
            let from = i.first_detection_ms.unwrap_or(i.start_ms);
            score.time_to_alert_s.push((first - from) as f64 / 1000.0);
        }
    }
    score
}

fn weather(truth: &GroundTruth, alerts: &[Alert]) -> DetectorScore {
    let raised = raised(alerts, AlertKind::SevereWeather);
    let station = |a: &Alert| {
        a.details
            .get("station_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let matches = |a: &Alert, e: &crate::sim::WeatherEpisode| {
        station(a).as_deref() == Some(e.station_id.as_str())
            && a.subtype == e.subtype
            && (e.start_ms - WX_TIME_SLACK_MS..=e.over_ms + WX_TIME_SLACK_MS).contains(&ms(a))
    };
    let episodes = &truth.weather_episodes;
    let mut score = DetectorScore {
        name: "severe weather",
        alerts: raised.len(),
        expected: episodes.len(),
        ..Default::default()
    };
    score.true_alerts = raised
        .iter()
        .filter(|a| episodes.iter().any(|e| matches(a, e)))
        .count();
    for e in episodes {
        if let Some(first) = raised.iter().filter(|a| matches(a, e)).map(|a| ms(a)).min() {
            score.found += 1;
            score
                .time_to_alert_s
                .push((first - e.onset_ms) as f64 / 1000.0);
        }
    }
    score
}

fn plate_alerts(alerts: &[Alert], subtype: &str) -> BTreeMap<String, i64> {
    let mut first: BTreeMap<String, i64> = BTreeMap::new();
    for a in raised(alerts, AlertKind::IllegalRideHailing) {
        if a.subtype != subtype {
            continue;
        }
        if let Some(plate) = a.details.get("plate").and_then(|v| v.as_str()) {
            let t = ms(a);
            first
                .entry(plate.to_owned())
                .and_modify(|m| *m = (*m).min(t))
                .or_insert(t);
        }
    }
    first
}

fn ride_hailing_pattern(truth: &GroundTruth, alerts: &[Alert]) -> DetectorScore {
    let alerted = plate_alerts(alerts, "pattern");
    let operators: BTreeMap<&str, Option<i64>> = truth
        .illegal_operators
        .iter()
        .filter(|o| o.reads > 0)
        .map(|o| (o.plate.as_str(), o.first_seen_ms))
        .collect();
    let mut score = DetectorScore {
        name: "ride-hailing (pattern)",
        alerts: alerted.len(),
        expected: operators.len(),
        ..Default::default()
    };
    score.true_alerts = alerted
        .keys()
        .filter(|p| operators.contains_key(p.as_str()))
        .count();
    for (plate, first_seen) in &operators {
        if let Some(t) = alerted.get(*plate) {
            score.found += 1;
            if let Some(seen) = first_seen {
                score.time_to_alert_s.push((t - seen) as f64 / 1000.0);
            }
        }
    }
    score
}

fn watchlist(truth: &GroundTruth, alerts: &[Alert]) -> DetectorScore {
    let alerted = plate_alerts(alerts, "watchlist");
    let listed: BTreeMap<&str, Option<i64>> = truth
        .watchlist
        .iter()
        .filter(|w| w.reads > 0)
        .map(|w| (w.plate.as_str(), w.first_seen_ms))
        .collect();
    let mut score = DetectorScore {
        name: "ride-hailing (watchlist)",
        alerts: alerted.len(),
        expected: listed.len(),
        ..Default::default()
    };
    let all_listed: BTreeSet<&str> = truth.watchlist_plates.iter().map(String::as_str).collect();
    score.true_alerts = alerted
        .keys()
        .filter(|p| all_listed.contains(p.as_str()))
        .count();
    for (plate, first_seen) in &listed {
        if let Some(t) = alerted.get(*plate) {
            score.found += 1;
            if let Some(seen) = first_seen {
                score.time_to_alert_s.push((t - seen) as f64 / 1000.0);
            }
        }
    }
    score
}
