//! Bytes → validated [`Record`], or a typed [`Reject`] (CONTRACT.md section 6).
//!
//! Decoding goes straight from the bytes into borrowed "raw" structs whose fields are all
//! optional, so that a missing field and a bad value are told apart by our own checks and
//! each gets its own reason. Only when serde itself fails do we parse a second time, with
//! serde_path_to_error, to name the offending field; the fast path pays nothing for that.
use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_json::error::Category;
use smallvec::SmallVec;

use super::ident::{is_valid_identifier, is_valid_plate};
use super::input::*;
use super::reject::{Reject, RejectReason as R};
use super::time::{parse_rfc3339_ms, valid_epoch_ms, EventTime};
use crate::settings::InputLimits;

/// What validation needs from outside the record: the reference "now" for the future-skew
/// check (wall clock live, the engine watermark in replay) — the core never reads a clock.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext {
    /// Epoch ms; `None` skips the future-skew check (e.g. before any time reference
    /// exists). Not an [`EventTime`]: live it is the wall clock or a record's Kafka time.
    pub now_ms: Option<i64>,
    pub max_future_skew_ms: i64,
    pub limits: InputLimits,
}

impl DecodeContext {
    pub fn without_clock() -> Self {
        DecodeContext {
            now_ms: None,
            max_future_skew_ms: i64::MAX,
            limits: InputLimits::DEFAULT,
        }
    }
}

/// Decodes one record value of the given stream.
pub fn decode_record(stream: Stream, bytes: &[u8], ctx: &DecodeContext) -> Result<Record, Reject> {
    // Before any parsing: a record's cost (and the DLQ copy of it) stays bounded.
    if bytes.len() > ctx.limits.max_record_bytes {
        return Err(Reject::new(
            R::RecordTooLarge,
            format!(
                "{} bytes; at most {} (input.max_record_bytes)",
                bytes.len(),
                ctx.limits.max_record_bytes
            ),
        ));
    }
    match stream {
        Stream::Camera => parse::<RawCamera>(bytes)?.validate(ctx).map(Record::Camera),
        Stream::Plate => parse::<RawPlate>(bytes)?.validate(ctx).map(Record::Plate),
        Stream::Weather => parse::<RawWeather>(bytes)?
            .validate(ctx)
            .map(Record::Weather),
        Stream::Patrol => parse::<RawPatrol>(bytes)?.validate(ctx).map(Record::Patrol),
        Stream::Ack => parse::<RawAck>(bytes)?.validate(ctx).map(Record::Ack),
        Stream::Operator => parse::<RawOperator>(bytes)?
            .validate(ctx)
            .map(Record::Operator),
    }
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Reject> {
    // serde would read a JSON array positionally into a struct; the contract wants objects.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Reject::new(R::InvalidJson, "expected a JSON object"));
    }
    // One SIMD pass over the whole value instead of serde_json's `from_slice`, which
    // validates every string separately (~5% of the replay path in perf); `from_str`
    // then trusts the text.
    let text = simdutf8::compat::from_utf8(bytes).map_err(|e| {
        Reject::new(
            R::InvalidJson,
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    serde_json::from_str::<T>(text).map_err(|e| classify::<T>(text, e))
}

/// Turns a serde failure into a reason: syntax errors are `invalid_json`; a value of the
/// wrong type is `invalid_field_type`, named by its path.
fn classify<'a, T: Deserialize<'a>>(text: &'a str, err: serde_json::Error) -> Reject {
    if err.classify() != Category::Data {
        return Reject::new(R::InvalidJson, err.to_string());
    }
    let mut de = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) if e.path().iter().next().is_some() => {
            Reject::new(R::InvalidFieldType, format!("{}: {}", e.path(), e.inner()))
        }
        // No path: the document itself is not an object.
        _ => Reject::new(R::InvalidJson, format!("expected a JSON object: {err}")),
    }
}

/// A string that borrows from the input when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A track id: vendors send `"17"` or `17`; both are the same track. Borrowed, so that
/// the ids of detections that keep none (vehicles) cost no allocation.
enum TrackId<'a> {
    Text(Cow<'a, str>),
    Number(i128),
}

impl TrackId<'_> {
    fn into_string(self) -> String {
        match self {
            TrackId::Text(s) => s.into_owned(),
            TrackId::Number(n) => n.to_string(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for TrackId<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = TrackId<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TrackId::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TrackId::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(TrackId::Number(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(TrackId::Number(v.into()))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `ts` as it came: integer milliseconds, something numeric but not an integer, or text.
enum RawTs<'a> {
    Millis(i64),
    NotInteger(f64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawTs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawTs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 string or integer epoch milliseconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawTs::Millis(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(RawTs::NotInteger(v as f64), RawTs::Millis))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawTs::NotInteger(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawTs::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawTs::Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

// ---- field checks, each naming its field ---------------------------------------------

fn required<T>(v: Option<T>, field: &str) -> Result<T, Reject> {
    v.ok_or_else(|| Reject::new(R::MissingField, format!("{field} is required")))
}

fn identifier(v: Option<Str>, field: &str) -> Result<String, Reject> {
    let s = required(v, field)?.0;
    if !is_valid_identifier(&s) {
        return Err(Reject::new(
            R::InvalidIdentifier,
            format!(
                "{field} must be 1-64 characters of [A-Za-z0-9._-], got {:?}",
                truncate(&s)
            ),
        ));
    }
    Ok(s.into_owned())
}

fn timestamp(v: Option<RawTs>, ctx: &DecodeContext) -> Result<EventTime, Reject> {
    let ms = match required(v, "ts")? {
        RawTs::Millis(ms) => valid_epoch_ms(ms).ok_or_else(|| {
            Reject::new(R::InvalidTimestamp, format!("ts {ms} ms is out of range"))
        })?,
        RawTs::NotInteger(x) => {
            return Err(Reject::new(
                R::InvalidTimestamp,
                format!("ts {x} is not integer milliseconds"),
            ))
        }
        RawTs::Text(s) => parse_rfc3339_ms(&s).ok_or_else(|| {
            Reject::new(
                R::InvalidTimestamp,
                format!("ts {:?} is not RFC 3339 with an offset", truncate(&s)),
            )
        })?,
    };
    if let Some(now) = ctx.now_ms {
        // The reference clock against event time: where they meet in the core.
        let ahead = ms.ms().saturating_sub(now);
        if ahead > ctx.max_future_skew_ms {
            return Err(Reject::new(
                R::FutureTimestamp,
                format!("ts is {} s ahead of the reference time", ahead / 1000),
            ));
        }
    }
    Ok(ms)
}

fn lat(v: Option<f64>, field: &str) -> Result<f64, Reject> {
    let x = required(v, field)?;
    if !x.is_finite() || !(-90.0..=90.0).contains(&x) {
        return Err(Reject::new(
            R::LatOutOfRange,
            format!("{field} {x} is outside -90..90"),
        ));
    }
    Ok(x)
}

fn lon(v: Option<f64>, field: &str) -> Result<f64, Reject> {
    let x = required(v, field)?;
    if !x.is_finite() || !(-180.0..=180.0).contains(&x) {
        return Err(Reject::new(
            R::LonOutOfRange,
            format!("{field} {x} is outside -180..180"),
        ));
    }
    Ok(x)
}

fn confidence(x: f64, field: &str) -> Result<f64, Reject> {
    if !x.is_finite() || !(0.0..=1.0).contains(&x) {
        return Err(Reject::new(
            R::ConfidenceOutOfRange,
            format!("{field} {x} is outside 0..1"),
        ));
    }
    Ok(x)
}

fn non_negative(v: Option<f64>, field: &str) -> Result<Option<f64>, Reject> {
    match v {
        Some(x) if !x.is_finite() || x < 0.0 => Err(Reject::new(
            R::NegativeMeasurement,
            format!("{field} {x} must be a non-negative number"),
        )),
        other => Ok(other),
    }
}

fn finite(v: Option<f64>, field: &str) -> Result<Option<f64>, Reject> {
    match v {
        Some(x) if !x.is_finite() => Err(Reject::new(
            R::InvalidFieldType,
            format!("{field} must be a finite number"),
        )),
        other => Ok(other),
    }
}

fn enumerated<E>(v: Option<Str>, field: &str, parse: fn(&str) -> Option<E>) -> Result<E, Reject> {
    let s = required(v, field)?.0;
    parse(&s).ok_or_else(|| {
        Reject::new(
            R::UnknownEnumValue,
            format!("{field} {:?} is not a known value", truncate(&s)),
        )
    })
}

fn optional_enum<E>(
    v: Option<Str>,
    field: &str,
    parse: fn(&str) -> Option<E>,
) -> Result<Option<E>, Reject> {
    v.map(|s| enumerated(Some(s), field, parse)).transpose()
}

/// Keeps DLQ details short even for hostile input.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

// ---- raw messages ----------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct RawCamera<'a> {
    #[serde(borrow)]
    event_id: Option<Str<'a>>,
    #[serde(borrow)]
    camera_id: Option<Str<'a>>,
    #[serde(borrow)]
    ts: Option<RawTs<'a>>,
    /// Inline for the usual few detections: a heap Vec here was a second allocation per
    /// frame, next to the validated one.
    #[serde(borrow)]
    detections: Option<SmallVec<[RawDetection<'a>; 4]>>,
}

#[derive(serde::Deserialize)]
struct RawDetection<'a> {
    #[serde(borrow)]
    class: Option<Str<'a>>,
    confidence: Option<f64>,
    lon: Option<f64>,
    lat: Option<f64>,
    #[serde(borrow)]
    track_id: Option<TrackId<'a>>,
}

impl RawCamera<'_> {
    fn validate(self, ctx: &DecodeContext) -> Result<CameraEvent, Reject> {
        let event_id = identifier(self.event_id, "event_id")?;
        let camera_id = identifier(self.camera_id, "camera_id")?;
        let ts = timestamp(self.ts, ctx)?;
        let raw = required(self.detections, "detections")?;
        if raw.len() > ctx.limits.max_detections {
            return Err(Reject::new(
                R::TooManyDetections,
                format!(
                    "{} detections; at most {} (input.max_detections_per_record)",
                    raw.len(),
                    ctx.limits.max_detections
                ),
            ));
        }
        let mut detections = Vec::with_capacity(raw.len());
        for (i, d) in raw.into_iter().enumerate() {
            // Field names are formatted with the detection's index only on failure: this
            // loop runs for every detection of every camera frame.
            let at = |e: Reject| Reject::new(e.reason, format!("detections[{i}].{}", e.detail));
            let class = required(d.class, "class").map_err(at)?;
            let confidence = required(d.confidence, "confidence")
                .and_then(|c| confidence(c, "confidence"))
                .map_err(at)?;
            let lon = lon(d.lon, "lon").map_err(at)?;
            let lat = lat(d.lat, "lat").map_err(at)?;
            // A class the contract does not list is validated like the rest, then ignored.
            if let Some(class) = DetectionClass::parse(&class.0) {
                detections.push(Detection {
                    class,
                    confidence,
                    lon,
                    lat,
                    // No detector follows vehicle tracks, and vehicles are most
                    // detections: their ids are checked for type, then dropped.
                    track_id: match class {
                        DetectionClass::Vehicle => None,
                        _ => d.track_id.map(TrackId::into_string),
                    },
                });
            }
        }
        Ok(CameraEvent {
            event_id,
            camera_id,
            ts,
            detections,
        })
    }
}

#[derive(serde::Deserialize)]
struct RawPlate<'a> {
    #[serde(borrow)]
    event_id: Option<Str<'a>>,
    #[serde(borrow)]
    reader_id: Option<Str<'a>>,
    #[serde(borrow)]
    ts: Option<RawTs<'a>>,
    #[serde(borrow)]
    plate: Option<Str<'a>>,
    #[serde(borrow)]
    plate_color: Option<Str<'a>>,
    #[serde(borrow)]
    vehicle_class: Option<Str<'a>>,
    lon: Option<f64>,
    lat: Option<f64>,
    confidence: Option<f64>,
}

impl RawPlate<'_> {
    fn validate(self, ctx: &DecodeContext) -> Result<PlateRead, Reject> {
        let event_id = identifier(self.event_id, "event_id")?;
        let reader_id = identifier(self.reader_id, "reader_id")?;
        let ts = timestamp(self.ts, ctx)?;
        let plate = required(self.plate, "plate")?.0;
        if is_valid_plate(&plate).is_none() {
            // The plate itself is personal data: the detail names only its shape.
            return Err(Reject::new(
                R::InvalidPlate,
                format!(
                    "plate of {} characters fits no plate format",
                    plate.chars().count()
                ),
            ));
        }
        Ok(PlateRead {
            event_id,
            reader_id,
            ts,
            plate: plate.into_owned(),
            plate_color: enumerated(self.plate_color, "plate_color", PlateColor::parse)?,
            vehicle_class: enumerated(self.vehicle_class, "vehicle_class", VehicleClass::parse)?,
            lon: lon(self.lon, "lon")?,
            lat: lat(self.lat, "lat")?,
            confidence: self
                .confidence
                .map(|c| confidence(c, "confidence"))
                .transpose()?,
        })
    }
}

#[derive(serde::Deserialize)]
struct RawWeather<'a> {
    #[serde(borrow)]
    event_id: Option<Str<'a>>,
    #[serde(borrow)]
    station_id: Option<Str<'a>>,
    #[serde(borrow)]
    ts: Option<RawTs<'a>>,
    lon: Option<f64>,
    lat: Option<f64>,
    visibility_m: Option<f64>,
    precipitation_mm_h: Option<f64>,
    wind_speed_ms: Option<f64>,
    wind_gust_ms: Option<f64>,
    road_surface_temp_c: Option<f64>,
    #[serde(borrow)]
    road_surface_state: Option<Str<'a>>,
    air_temp_c: Option<f64>,
}

impl RawWeather<'_> {
    fn validate(self, ctx: &DecodeContext) -> Result<WeatherObservation, Reject> {
        Ok(WeatherObservation {
            event_id: identifier(self.event_id, "event_id")?,
            station_id: identifier(self.station_id, "station_id")?,
            ts: timestamp(self.ts, ctx)?,
            lon: lon(self.lon, "lon")?,
            lat: lat(self.lat, "lat")?,
            visibility_m: non_negative(self.visibility_m, "visibility_m")?,
            precipitation_mm_h: non_negative(self.precipitation_mm_h, "precipitation_mm_h")?,
            wind_speed_mps: non_negative(self.wind_speed_ms, "wind_speed_ms")?,
            wind_gust_mps: non_negative(self.wind_gust_ms, "wind_gust_ms")?,
            road_surface_temp_c: finite(self.road_surface_temp_c, "road_surface_temp_c")?,
            road_surface_state: optional_enum(
                self.road_surface_state,
                "road_surface_state",
                RoadSurfaceState::parse,
            )?,
            air_temp_c: finite(self.air_temp_c, "air_temp_c")?,
        })
    }
}

#[derive(serde::Deserialize)]
struct RawPatrol<'a> {
    #[serde(borrow)]
    unit_id: Option<Str<'a>>,
    #[serde(borrow)]
    ts: Option<RawTs<'a>>,
    lon: Option<f64>,
    lat: Option<f64>,
    #[serde(borrow)]
    status: Option<Str<'a>>,
    speed_kmh: Option<f64>,
}

impl RawPatrol<'_> {
    fn validate(self, ctx: &DecodeContext) -> Result<PatrolPosition, Reject> {
        Ok(PatrolPosition {
            unit_id: identifier(self.unit_id, "unit_id")?,
            ts: timestamp(self.ts, ctx)?,
            lon: lon(self.lon, "lon")?,
            lat: lat(self.lat, "lat")?,
            status: enumerated(self.status, "status", UnitStatus::parse)?,
            speed_kmh: non_negative(self.speed_kmh, "speed_kmh")?,
        })
    }
}

#[derive(serde::Deserialize)]
struct RawAck<'a> {
    #[serde(borrow)]
    alert_id: Option<Str<'a>>,
    #[serde(borrow)]
    unit_id: Option<Str<'a>>,
    #[serde(borrow)]
    ts: Option<RawTs<'a>>,
    #[serde(borrow)]
    status: Option<Str<'a>>,
    #[serde(borrow)]
    outcome: Option<Str<'a>>,
}

impl RawAck<'_> {
    fn validate(self, ctx: &DecodeContext) -> Result<DispatchAck, Reject> {
        let status = enumerated(self.status, "status", AckStatus::parse)?;
        // Only a `resolved` says what the unit found; on another answer the field means
        // nothing and is ignored like any unknown field.
        let outcome = match status {
            AckStatus::Resolved => optional_enum(self.outcome, "outcome", Outcome::parse_reported)?,
            _ => None,
        };
        Ok(DispatchAck {
            alert_id: identifier(self.alert_id, "alert_id")?,
            unit_id: identifier(self.unit_id, "unit_id")?,
            ts: timestamp(self.ts, ctx)?,
            status,
            outcome,
        })
    }
}

/// `operator-actions` (CONTRACT section 2). Each action's own field is required for that
/// action (`unit_id` for `assign`, `outcome` for `close`, `text` for `note`) and ignored
/// otherwise.
#[derive(serde::Deserialize)]
struct RawOperator<'a> {
    #[serde(borrow)]
    action_id: Option<Str<'a>>,
    #[serde(borrow)]
    operator_id: Option<Str<'a>>,
    #[serde(borrow)]
    ts: Option<RawTs<'a>>,
    #[serde(borrow)]
    alert_id: Option<Str<'a>>,
    #[serde(borrow)]
    action: Option<Str<'a>>,
    #[serde(borrow)]
    unit_id: Option<Str<'a>>,
    #[serde(borrow)]
    outcome: Option<Str<'a>>,
    #[serde(borrow)]
    text: Option<Str<'a>>,
}

impl RawOperator<'_> {
    fn validate(self, ctx: &DecodeContext) -> Result<OperatorAction, Reject> {
        let action_id = identifier(self.action_id, "action_id")?;
        let operator_id = identifier(self.operator_id, "operator_id")?;
        let ts = timestamp(self.ts, ctx)?;
        let alert_id = identifier(self.alert_id, "alert_id")?;
        let action = match enumerated(self.action, "action", ActionKind::parse)? {
            ActionKind::Acknowledge => Action::Acknowledge,
            ActionKind::Assign => Action::Assign {
                unit_id: identifier(self.unit_id, "unit_id")?,
            },
            ActionKind::Close => Action::Close {
                outcome: enumerated(self.outcome, "outcome", Outcome::parse_reported)?,
            },
            ActionKind::Note => {
                let text = required(self.text, "text")?.0;
                let chars = text.chars().count();
                if chars > MAX_NOTE_CHARS {
                    return Err(Reject::new(
                        R::TextTooLong,
                        format!("text has {chars} characters; at most {MAX_NOTE_CHARS}"),
                    ));
                }
                Action::Note {
                    text: text.into_owned(),
                }
            }
        };
        Ok(OperatorAction {
            action_id,
            operator_id,
            ts,
            alert_id,
            action,
        })
    }
}
