//! Pedestrians and non-motor vehicles on the carriageway (Road Traffic Safety Law art. 67:
//! neither may enter an expressway). DOMAIN.md "Pedestrians and non-motor vehicles".
//!
//! A detection qualifies when it is a pedestrian/bicycle/tricycle with enough confidence,
//! within `width_m / 2` of a carriageway or ramp centre line, and not inside a service
//! area, toll plaza or active work zone (people are expected there). Qualifying
//! detections near an open incident join it; otherwise two of them close in time and
//! space, or one very confident one, open a new incident. An incident with no detection
//! for `clear_after` is cleared when event time passes that deadline.
use std::collections::VecDeque;

use serde_json::{json, Map};

use crate::core::alert::{alert_id, describe_place, location, structure_word, AlertDraft};
use crate::core::model::{
    AlertKind, AlertLocation, AlertStatus, CameraEvent, DetectionClass, EventTime, Severity,
};
use crate::core::roads::{distance_m, Direction, RoadNetwork, RoadPosition, Structure, ZoneKind};
use crate::core::settings::{Locale, OutputSettings, PedestrianSettings};

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
}

pub struct PedestrianDetector {
    settings: PedestrianSettings,
    output: OutputSettings,
    /// Qualifying but unconfirmed detections, oldest first.
    pending: VecDeque<Sighting>,
    /// Open incidents in opening order (deterministic output).
    incidents: Vec<Incident>,
}

impl PedestrianDetector {
    pub fn new(settings: PedestrianSettings, output: OutputSettings) -> Self {
        PedestrianDetector {
            settings,
            output,
            pending: VecDeque::new(),
            incidents: Vec::new(),
        }
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
        // Only a worse situation is news to the officers on their way; more frames of the
        // same person are not.
        if severity > inc.severity {
            inc.severity = severity;
            inc.location = location(s.lon, s.lat, Some(&s.pos));
            let draft = self.draft(&self.incidents[i], AlertStatus::Update, s.ms);
            out.push(draft);
        }
    }

    /// Event time reached `now`: clear quiet incidents, forget stale pending detections.
    pub fn on_time(&mut self, now: EventTime, allowed_lateness_ms: i64, out: &mut Vec<AlertDraft>) {
        let horizon = now - self.settings.confirm_window_ms - allowed_lateness_ms;
        while self.pending.front().is_some_and(|p| p.ms < horizon) {
            self.pending.pop_front();
        }
        let clear_after = self.settings.clear_after_ms;
        let (due, open): (Vec<Incident>, Vec<Incident>) = std::mem::take(&mut self.incidents)
            .into_iter()
            .partition(|inc| inc.last_ms + clear_after <= now);
        self.incidents = open;
        // In deadline order, as they would have fired with a finer clock; the sort is
        // stable, so equal deadlines keep their opening order.
        let mut due = due;
        due.sort_by_key(|inc| inc.last_ms);
        for inc in due {
            out.push(self.draft(&inc, AlertStatus::Cleared, inc.last_ms + clear_after));
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
            summary: summary(&inc.location, inc.subtype, status, inc.fog_level, locale),
            location: inc.location.clone(),
            details,
            source_event_ids: inc.sources.iter().cloned().collect(),
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
                AlertStatus::Update => {
                    format!("{what} on the carriageway{where_} at {place}: escalated{fog}")
                }
                _ => format!("{what} on the carriageway{where_} at {place}{fog}"),
            }
        }
    }
}
