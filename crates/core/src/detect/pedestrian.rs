//! Pedestrians and non-motor vehicles on the carriageway (Road Traffic Safety Law art. 67:
//! neither may enter an expressway). DOMAIN.md "Pedestrians and non-motor vehicles".
//!
//! A detection qualifies when it is a pedestrian/bicycle/tricycle with enough confidence,
//! within `width_m / 2` of a carriageway or ramp centre line, and not inside a service
//! area, toll plaza or active work zone (people are expected there). Qualifying
//! detections near an open incident join it; otherwise two of them close in time and
//! space, or one very confident one, open a new incident.
//!
//! Losing sight is not the all-clear (DOMAIN.md; docs/LIFECYCLE.md): an incident with no
//! detection for `clear_after` is cleared only if a unit has accepted it. Otherwise it
//! latches: one `update` with `observed: false`, its dispatch goes on, and it stays open
//! (a detection nearby is the same incident again, `observed: true`) until a unit
//! accepts it, an operator closes it, or `unverified_close` passes (then `cleared`, the
//! lifecycle book adds `outcome: unknown`). A cleared incident is remembered for
//! `reopen_within`: a qualifying detection within the incident radius, same road and
//! direction, reopens it under its own id (the walker between two cameras 2 km apart).
use std::collections::VecDeque;

use serde_json::{json, Map};

use crate::alert::{alert_id, describe_place, location, structure_word, AlertDraft};
use crate::model::{
    AlertKind, AlertLocation, AlertStatus, CameraEvent, DetectionClass, EventTime, Severity,
};
use crate::roads::{distance_m, Direction, RoadNetwork, RoadPosition, Structure, ZoneKind};
use crate::settings::{Locale, OutputSettings, PedestrianSettings};

/// Incidents keep only the most recent source ids: an alert names what triggered it,
/// not hours of frames.
const MAX_SOURCES: usize = 16;

#[derive(Debug, Clone)]
struct Sighting {
    ms: EventTime,
    lon: f64,
    lat: f64,
    class: DetectionClass,
    confidence: f64,
    event_id: String,
    camera_id: String,
    pos: RoadPosition,
}

#[derive(Debug, Clone)]
struct Incident {
    alert_id: String,
    road_id: String,
    direction: Direction,
    /// Stake of the latest detection: the incident follows a walking person.
    stake_m: f64,
    last_ms: EventTime,
    severity: Severity,
    subtype: DetectionClass,
    location: AlertLocation,
    detections: u32,
    max_confidence: f64,
    cameras: Vec<String>,
    sources: VecDeque<String>,
    fog_level: u8,
    /// Since when it has been out of sight without a unit on it (`observed: false`).
    lost_at: Option<EventTime>,
    /// It was out of sight once: its documents say `observed` from then on.
    was_lost: bool,
}

impl Incident {
    fn observed(&self) -> Option<bool> {
        match (self.lost_at, self.was_lost) {
            (Some(_), _) => Some(false),
            (None, true) => Some(true),
            (None, false) => None,
        }
    }
}

/// What the clock decided for an incident.
enum Due {
    /// Out of sight with nobody on it: `observed: false`, it stays open.
    Lost,
    Cleared,
}

pub struct PedestrianDetector {
    settings: PedestrianSettings,
    output: OutputSettings,
    /// Qualifying but unconfirmed detections, oldest first.
    pending: VecDeque<Sighting>,
    /// Open incidents in opening order (deterministic output).
    incidents: Vec<Incident>,
    /// Cleared incidents and when, kept `reopen_within`, oldest first.
    recent: VecDeque<(EventTime, Incident)>,
}

impl PedestrianDetector {
    pub fn new(settings: PedestrianSettings, output: OutputSettings) -> Self {
        PedestrianDetector {
            settings,
            output,
            pending: VecDeque::new(),
            incidents: Vec::new(),
            recent: VecDeque::new(),
        }
    }

    /// The earliest time at which [`Self::on_time`] changes an incident (a clear, a latch,
    /// an unverified close).
    pub fn next_deadline(&self) -> Option<EventTime> {
        self.incidents
            .iter()
            .map(|i| match i.lost_at {
                None => i.last_ms + self.settings.clear_after_ms,
                Some(lost) => lost + self.settings.unverified_close_ms,
            })
            .min()
    }

    /// A unit or an operator ended the alert: the incident is gone, and more of it later
    /// is a new one.
    pub fn close(&mut self, alert_id: &str) {
        self.incidents.retain(|i| i.alert_id != alert_id);
        self.recent.retain(|(_, i)| i.alert_id != alert_id);
    }

    pub fn open_incidents(&self) -> usize {
        self.incidents.len()
    }

    /// One camera event. `fog_level_at(road_id, stake_m)` is the active fog level there.
    pub fn on_camera(
        &mut self,
        ev: &CameraEvent,
        roads: &RoadNetwork,
        fog_level_at: impl Fn(&str, f64) -> u8,
        out: &mut Vec<AlertDraft>,
    ) {
        for d in &ev.detections {
            if !matches!(
                d.class,
                DetectionClass::Pedestrian | DetectionClass::Bicycle | DetectionClass::Tricycle
            ) || d.confidence < self.settings.min_confidence
            {
                continue;
            }
            let Some(pos) = self.qualifying_position(d.lon, d.lat, ev.ts, roads) else {
                continue;
            };
            let sighting = Sighting {
                ms: ev.ts,
                lon: d.lon,
                lat: d.lat,
                class: d.class,
                confidence: d.confidence,
                event_id: ev.event_id.clone(),
                camera_id: ev.camera_id.clone(),
                pos,
            };
            let fog = fog_level_at(&sighting.pos.road_id, sighting.pos.stake_m);
            self.on_sighting(sighting, fog, out);
        }
    }

    /// On the carriageway or a ramp, and not where people are allowed to be.
    fn qualifying_position(
        &self,
        lon: f64,
        lat: f64,
        at_ms: EventTime,
        roads: &RoadNetwork,
    ) -> Option<RoadPosition> {
        let pos = roads.locate(lon, lat, at_ms)?;
        if !pos.on_carriageway {
            return None;
        }
        // All zones, not just the one `locate` reports: a work zone inside a tunnel
        // polygon still excludes the point.
        let excluded = roads.zones_at(lon, lat, at_ms).iter().any(|z| {
            matches!(
                z.kind,
                ZoneKind::ServiceArea | ZoneKind::TollPlaza | ZoneKind::WorkZone
            )
        });
        (!excluded).then_some(pos)
    }

    fn on_sighting(&mut self, s: Sighting, fog: u8, out: &mut Vec<AlertDraft>) {
        if let Some(i) = self.joining_incident(&s) {
            self.join(i, s, fog, out);
            return;
        }
        if let Some(k) = self.reopening(&s) {
            let (_, mut inc) = self.recent.remove(k).expect("found above");
            // Seen again: `join` sends the `update` with `observed: true`.
            inc.lost_at = Some(inc.last_ms);
            inc.was_lost = true;
            self.incidents.push(inc);
            self.join(self.incidents.len() - 1, s, fog, out);
            return;
        }
        let partner = if s.confidence >= self.settings.confirm_single_confidence {
            None
        } else {
            match self.pending_partner(&s) {
                Some(p) => Some(p),
                None => {
                    self.pending.push_back(s);
                    return;
                }
            }
        };
        self.open(s, partner, fog, out);
    }

    fn joining_incident(&self, s: &Sighting) -> Option<usize> {
        self.incidents
            .iter()
            .enumerate()
            .filter(|(_, inc)| {
                inc.road_id == *s.pos.road_id
                    && inc.direction == s.pos.direction
                    && (inc.stake_m - s.pos.stake_m).abs() <= self.settings.incident_radius_m
            })
            .min_by(|(_, a), (_, b)| {
                let da = (a.stake_m - s.pos.stake_m).abs();
                let db = (b.stake_m - s.pos.stake_m).abs();
                da.total_cmp(&db)
            })
            .map(|(i, _)| i)
    }

    /// A cleared incident this detection reopens: same road and direction, within the
    /// incident radius, cleared at most `reopen_within` ago (the nearest).
    fn reopening(&self, s: &Sighting) -> Option<usize> {
        self.recent
            .iter()
            .enumerate()
            .filter(|(_, (at, inc))| {
                s.ms - *at <= self.settings.reopen_within_ms
                    && inc.road_id == *s.pos.road_id
                    && inc.direction == s.pos.direction
                    && (inc.stake_m - s.pos.stake_m).abs() <= self.settings.incident_radius_m
            })
            .min_by(|(_, (_, a)), (_, (_, b))| {
                let da = (a.stake_m - s.pos.stake_m).abs();
                let db = (b.stake_m - s.pos.stake_m).abs();
                da.total_cmp(&db)
            })
            .map(|(k, _)| k)
    }

    /// A pending detection within the confirmation window and distance (any camera);
    /// removed from `pending` because it now belongs to the incident.
    fn pending_partner(&mut self, s: &Sighting) -> Option<Sighting> {
        let idx = self.pending.iter().position(|p| {
            (p.ms - s.ms).abs() <= self.settings.confirm_window_ms
                && distance_m([p.lon, p.lat], [s.lon, s.lat]) <= self.settings.confirm_distance_m
        })?;
        self.pending.remove(idx)
    }

    fn severity(&self, pos: &RoadPosition, fog: u8) -> Severity {
        let on_structure = matches!(pos.structure, Some(Structure::Tunnel | Structure::Bridge));
        if on_structure || fog >= self.settings.critical_fog_level {
            Severity::Critical
        } else {
            Severity::Severe
        }
    }

    fn open(&mut self, s: Sighting, partner: Option<Sighting>, fog: u8, out: &mut Vec<AlertDraft>) {
        let first_ms = partner.as_ref().map_or(s.ms, |p| p.ms.min(s.ms));
        let id = alert_id(
            "ped",
            &[
                &s.pos.road_id,
                s.pos.direction.as_str(),
                &(s.pos.stake_m.round() as i64).to_string(),
            ],
            first_ms,
        );
        let mut sources = VecDeque::new();
        let mut cameras = Vec::new();
        let mut max_confidence = s.confidence;
        if let Some(p) = &partner {
            sources.push_back(p.event_id.clone());
            cameras.push(p.camera_id.clone());
            max_confidence = max_confidence.max(p.confidence);
        }
        push_source(&mut sources, &s.event_id);
        if !cameras.contains(&s.camera_id) {
            cameras.push(s.camera_id.clone());
        }
        let incident = Incident {
            alert_id: id,
            road_id: s.pos.road_id.to_string(),
            direction: s.pos.direction,
            stake_m: s.pos.stake_m,
            last_ms: partner.as_ref().map_or(s.ms, |p| p.ms.max(s.ms)),
            severity: self.severity(&s.pos, fog),
            subtype: s.class,
            location: location(s.lon, s.lat, Some(&s.pos)),
            detections: 1 + u32::from(partner.is_some()),
            max_confidence,
            cameras,
            sources,
            fog_level: fog,
            lost_at: None,
            was_lost: false,
        };
        out.push(self.draft(&incident, AlertStatus::New, s.ms));
        self.incidents.push(incident);
    }

    fn join(&mut self, i: usize, s: Sighting, fog: u8, out: &mut Vec<AlertDraft>) {
        let severity = self.severity(&s.pos, fog);
        let inc = &mut self.incidents[i];
        inc.detections += 1;
        inc.max_confidence = inc.max_confidence.max(s.confidence);
        // A late detection (within the allowed lateness) must not pull the clear deadline back.
        if s.ms >= inc.last_ms {
            inc.last_ms = s.ms;
            inc.stake_m = s.pos.stake_m;
        }
        push_source(&mut inc.sources, &s.event_id);
        if !inc.cameras.contains(&s.camera_id) {
            inc.cameras.push(s.camera_id.clone());
        }
        inc.fog_level = inc.fog_level.max(fog);
        // Seen again after it was out of sight: news to everyone looking for the person.
        let found = inc.lost_at.take().is_some();
        // Only a worse situation is news to the officers on their way; more frames of the
        // same person are not.
        if found && severity <= inc.severity {
            let draft = self.draft(&self.incidents[i], AlertStatus::Update, s.ms);
            out.push(draft);
        } else if severity > inc.severity {
            inc.severity = severity;
            inc.location = location(s.lon, s.lat, Some(&s.pos));
            let draft = self.draft(&self.incidents[i], AlertStatus::Update, s.ms);
            out.push(draft);
        }
    }

    /// Event time reached `now`: quiet incidents clear (accepted) or latch (not), latched
    /// ones nobody took close after `unverified_close`; stale pending detections and
    /// cleared incidents past `reopen_within` are forgotten. `accepted(alert_id)`: a unit
    /// has accepted the alert.
    pub fn on_time(
        &mut self,
        now: EventTime,
        allowed_lateness_ms: i64,
        accepted: &dyn Fn(&str) -> bool,
        out: &mut Vec<AlertDraft>,
    ) {
        let horizon = now - self.settings.confirm_window_ms - allowed_lateness_ms;
        while self.pending.front().is_some_and(|p| p.ms < horizon) {
            self.pending.pop_front();
        }
        let reopen = self.settings.reopen_within_ms;
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| *at + reopen < now)
        {
            self.recent.pop_front();
        }
        let clear_after = self.settings.clear_after_ms;
        let unverified = self.settings.unverified_close_ms;
        let mut due: Vec<(EventTime, Due, Incident)> = Vec::new();
        let mut open = Vec::with_capacity(self.incidents.len());
        for mut inc in std::mem::take(&mut self.incidents) {
            let quiet_until = inc.last_ms + clear_after;
            if quiet_until > now {
                open.push(inc);
            } else if accepted(&inc.alert_id) {
                // Accepted while in sight: cleared when the time ran out; accepted while
                // latched: cleared now (the 120 s had long passed).
                let at = if inc.lost_at.is_some() {
                    now
                } else {
                    quiet_until
                };
                due.push((at, Due::Cleared, inc));
            } else {
                let lost = match inc.lost_at {
                    Some(lost) => lost,
                    None => {
                        inc.lost_at = Some(quiet_until);
                        inc.was_lost = true;
                        due.push((quiet_until, Due::Lost, inc.clone()));
                        quiet_until
                    }
                };
                // A clock that jumped far (idle input) may owe both at once.
                if lost + unverified <= now {
                    due.push((lost + unverified, Due::Cleared, inc));
                } else {
                    open.push(inc);
                }
            }
        }
        self.incidents = open;
        // In deadline order, as they would have fired with a finer clock; the sort is
        // stable, so equal deadlines keep their opening order.
        due.sort_by_key(|(at, _, _)| *at);
        for (at, what, inc) in due {
            match what {
                Due::Lost => out.push(self.draft(&inc, AlertStatus::Update, at)),
                Due::Cleared => {
                    out.push(self.draft(&inc, AlertStatus::Cleared, at));
                    self.recent.push_back((at, inc));
                }
            }
        }
    }

    fn draft(&self, inc: &Incident, status: AlertStatus, event_ms: EventTime) -> AlertDraft {
        let locale = self.output.locale;
        let mut details = Map::new();
        details.insert("detections".into(), json!(inc.detections));
        details.insert("max_confidence".into(), json!(inc.max_confidence));
        details.insert("camera_ids".into(), json!(inc.cameras));
        details.insert("fog_level".into(), json!(inc.fog_level));
        details.insert(
            "clear_after_s".into(),
            json!(self.settings.clear_after_ms / 1000),
        );
        AlertDraft {
            alert_id: inc.alert_id.clone(),
            kind: AlertKind::Pedestrian,
            subtype: inc.subtype.as_str(),
            severity: inc.severity,
            status,
            event_ms,
            summary: summary(
                &inc.location,
                inc.subtype,
                status,
                inc.fog_level,
                inc.lost_at.is_some(),
                locale,
            ),
            location: inc.location.clone(),
            details,
            source_event_ids: inc.sources.iter().cloned().collect(),
            observed: inc.observed(),
            intercept: None,
        }
    }
}

fn push_source(sources: &mut VecDeque<String>, id: &str) {
    if sources.iter().any(|s| s == id) {
        return;
    }
    if sources.len() == MAX_SOURCES {
        sources.pop_front();
    }
    sources.push_back(id.to_owned());
}

fn summary(
    loc: &AlertLocation,
    class: DetectionClass,
    status: AlertStatus,
    fog_level: u8,
    out_of_sight: bool,
    locale: Locale,
) -> String {
    let place = describe_place(loc, locale);
    let structure = structure_word(loc.structure.as_deref(), locale);
    match locale {
        Locale::ZhCn => {
            let what = match class {
                DetectionClass::Bicycle => "非机动车（自行车）",
                DetectionClass::Tricycle => "非机动车（三轮车）",
                _ => "行人",
            };
            let fog = if fog_level >= 2 {
                "，团雾路段"
            } else {
                ""
            };
            match status {
                AlertStatus::Cleared => format!("{place} {what}警情已解除"),
                AlertStatus::Update if out_of_sight => {
                    format!(
                        "{place} {}{what}已离开监控画面，尚未核实，警情未解除",
                        structure.unwrap_or("")
                    )
                }
                AlertStatus::Update => {
                    format!("{place} {}{what}警情升级{fog}", structure.unwrap_or(""))
                }
                _ => format!("{place} {}发现{what}{fog}", structure.unwrap_or("")),
            }
        }
        Locale::En => {
            let what = match class {
                DetectionClass::Bicycle => "Bicycle",
                DetectionClass::Tricycle => "Tricycle",
                _ => "Pedestrian",
            };
            let where_ = structure.map(|s| format!(" {s}")).unwrap_or_default();
            let fog = if fog_level >= 2 { ", in fog" } else { "" };
            match status {
                AlertStatus::Cleared => format!("{what} incident cleared at {place}"),
                AlertStatus::Update if out_of_sight => {
                    format!(
                        "{what} out of camera view{where_} at {place}: not verified, still open"
                    )
                }
                AlertStatus::Update => {
                    format!("{what} on the carriageway{where_} at {place}: escalated{fog}")
                }
                _ => format!("{what} on the carriageway{where_} at {place}{fog}"),
            }
        }
    }
}
