//! JSON bytes exactly as the devices send them (CONTRACT.md section 2), written by hand
//! for speed and for a fixed field order, plus the deliberate breakage that exercises
//! the DLQ (section 6).
//!
//! Breakage is applied to a copy of a good record, never instead of it, so a broken
//! record never takes a real observation away from the truth.
use std::fmt::Write as _;

use super::patrol::{AckOut, PatrolFix};
use super::people::Det;
use super::weather::Observation;
use roadwatch_core::model::{format_rfc3339, PlateColor, RejectReason, UtcOffset, VehicleClass};

/// How to break a record, and the DLQ reason that breakage must produce.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Corrupt {
    None,
    /// Cut short: not JSON. → `invalid_json`
    Truncate,
    /// A device id with spaces. → `invalid_identifier`
    BadId,
    /// Latitude pushed past ±90 (a firmware writing the wrong field). → `lat_out_of_range`
    BadLat,
    /// A plate no format allows. → `invalid_plate`
    BadPlate(String),
    /// No `ts`. → `missing_field`
    NoTs,
}

impl Corrupt {
    pub fn reason(&self) -> Option<RejectReason> {
        match self {
            Corrupt::None => None,
            Corrupt::Truncate => Some(RejectReason::InvalidJson),
            Corrupt::BadId => Some(RejectReason::InvalidIdentifier),
            Corrupt::BadLat => Some(RejectReason::LatOutOfRange),
            Corrupt::BadPlate(_) => Some(RejectReason::InvalidPlate),
            Corrupt::NoTs => Some(RejectReason::MissingField),
        }
    }
}

/// Renders device messages; owns the reused text buffer.
pub(crate) struct Renderer {
    pub offset: UtcOffset,
    buf: String,
}

/// Writes `x` with exactly `decimals` decimals (at most 9), like `{:.N}` but through
/// integers: the float formatter was the slowest part of rendering. Finite input only.
/// Ties round away from zero (`{:.N}` rounds the exact binary value), so a last digit
/// may differ from `{:.N}` on a tie; the output is still deterministic.
fn push_fixed(buf: &mut String, x: f64, decimals: u32) {
    debug_assert!(x.is_finite() && decimals <= 9);
    let scale = 10i64.pow(decimals);
    let scaled = (x * scale as f64).round() as i64;
    if scaled < 0 {
        buf.push('-');
    }
    let abs = scaled.unsigned_abs();
    let scale = scale as u64;
    let _ = write!(buf, "{}", abs / scale);
    if decimals > 0 {
        let _ = write!(buf, ".{:0width$}", abs % scale, width = decimals as usize);
    }
}

fn bad_id(id: &str) -> String {
    id.replace('-', " ")
}

fn bad_lat(lat: f64) -> f64 {
    if lat >= 0.0 {
        lat + 100.0
    } else {
        lat - 100.0
    }
}

impl Renderer {
    pub fn new(offset: UtcOffset) -> Renderer {
        Renderer {
            offset,
            buf: String::with_capacity(1024),
        }
    }

    fn ts(&mut self, ts: i64, epoch: bool, c: &Corrupt) {
        if *c == Corrupt::NoTs {
            return;
        }
        if epoch {
            let _ = write!(self.buf, ",\"ts\":{ts}");
        } else {
            let _ = write!(self.buf, ",\"ts\":\"{}\"", format_rfc3339(ts, self.offset));
        }
    }

    fn id_field(&mut self, name: &str, id: &str, c: &Corrupt) {
        if *c == Corrupt::BadId {
            let _ = write!(self.buf, "\"{name}\":\"{}\"", bad_id(id));
        } else {
            let _ = write!(self.buf, "\"{name}\":\"{id}\"");
        }
    }

    fn lon_lat(&mut self, lon: f64, lat: f64, c: &Corrupt) {
        let lat = if *c == Corrupt::BadLat {
            bad_lat(lat)
        } else {
            lat
        };
        self.buf.push_str(",\"lon\":");
        push_fixed(&mut self.buf, lon, 6);
        self.buf.push_str(",\"lat\":");
        push_fixed(&mut self.buf, lat, 6);
    }

    fn finish(&mut self, c: &Corrupt, cut_at: f64) -> Vec<u8> {
        if *c == Corrupt::Truncate {
            // Somewhere in the middle, on a character boundary: still UTF-8, never JSON.
            let len = self.buf.len();
            let mut at = ((len as f64 * cut_at) as usize).clamp(1, len.saturating_sub(2).max(1));
            while !self.buf.is_char_boundary(at) {
                at -= 1;
            }
            self.buf.truncate(at.max(1));
        }
        self.buf.as_bytes().to_vec()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn camera(
        &mut self,
        camera_id: &str,
        seq: u64,
        ts: i64,
        epoch: bool,
        dets: &[Det],
        c: &Corrupt,
        cut_at: f64,
    ) -> Vec<u8> {
        self.buf.clear();
        self.buf.push('{');
        let event_id = format!("{camera_id}-{seq:06}");
        self.id_field("event_id", &event_id, c);
        self.buf.push(',');
        self.id_field("camera_id", camera_id, c);
        self.ts(ts, epoch, c);
        self.buf.push_str(",\"detections\":[");
        for (k, d) in dets.iter().enumerate() {
            if k > 0 {
                self.buf.push(',');
            }
            let _ = write!(
                self.buf,
                "{{\"class\":\"{}\",\"confidence\":",
                d.class.as_str()
            );
            push_fixed(&mut self.buf, d.confidence, 2);
            // Only the first detection is broken: one bad value is enough.
            let corrupt = if k == 0 { c } else { &Corrupt::None };
            self.lon_lat(d.lon, d.lat, corrupt);
            if let Some(t) = d.track {
                let _ = write!(self.buf, ",\"track_id\":\"{t}\"");
            }
            self.buf.push('}');
        }
        self.buf.push_str("]}");
        self.finish(c, cut_at)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn plate(
        &mut self,
        reader_id: &str,
        seq: u64,
        ts: i64,
        plate: &str,
        color: PlateColor,
        class: VehicleClass,
        lon: f64,
        lat: f64,
        confidence: f64,
        c: &Corrupt,
        cut_at: f64,
    ) -> Vec<u8> {
        self.buf.clear();
        self.buf.push('{');
        let event_id = format!("{reader_id}-{seq:06}");
        self.id_field("event_id", &event_id, c);
        self.buf.push(',');
        self.id_field("reader_id", reader_id, c);
        self.ts(ts, false, c);
        let plate = match c {
            Corrupt::BadPlate(p) => p.as_str(),
            _ => plate,
        };
        // Plates are province character + ASCII: nothing to escape, but stay safe.
        let _ = write!(
            self.buf,
            ",\"plate\":{},\"plate_color\":\"{}\",\"vehicle_class\":\"{}\"",
            serde_json::Value::from(plate),
            color.as_str(),
            class.as_str()
        );
        self.lon_lat(lon, lat, c);
        self.buf.push_str(",\"confidence\":");
        push_fixed(&mut self.buf, confidence, 2);
        self.buf.push('}');
        self.finish(c, cut_at)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn weather(
        &mut self,
        station_id: &str,
        seq: u64,
        ts: i64,
        epoch: bool,
        lon: f64,
        lat: f64,
        o: &Observation,
        c: &Corrupt,
        cut_at: f64,
    ) -> Vec<u8> {
        self.buf.clear();
        self.buf.push('{');
        let event_id = format!("{station_id}-{seq:06}");
        self.id_field("event_id", &event_id, c);
        self.buf.push(',');
        self.id_field("station_id", station_id, c);
        self.ts(ts, epoch, c);
        self.lon_lat(lon, lat, c);
        let fields = [
            ("visibility_m", o.visibility_m),
            ("precipitation_mm_h", o.precipitation_mm_h),
            ("wind_speed_ms", o.wind_speed_mps),
            ("wind_gust_ms", o.wind_gust_mps),
            ("road_surface_temp_c", o.road_surface_temp_c),
        ];
        for (name, v) in fields {
            match v {
                Some(x) => {
                    let _ = write!(self.buf, ",\"{name}\":");
                    push_fixed(&mut self.buf, x, 1);
                }
                None => {
                    let _ = write!(self.buf, ",\"{name}\":null");
                }
            }
        }
        match o.road_surface_state {
            Some(s) => {
                let _ = write!(self.buf, ",\"road_surface_state\":\"{}\"", s.as_str());
            }
            None => self.buf.push_str(",\"road_surface_state\":null"),
        }
        match o.air_temp_c {
            Some(x) => {
                self.buf.push_str(",\"air_temp_c\":");
                push_fixed(&mut self.buf, x, 1);
            }
            None => self.buf.push_str(",\"air_temp_c\":null"),
        }
        self.buf.push('}');
        self.finish(c, cut_at)
    }

    pub fn patrol(
        &mut self,
        unit_id: &str,
        ts: i64,
        f: &PatrolFix,
        c: &Corrupt,
        cut_at: f64,
    ) -> Vec<u8> {
        self.buf.clear();
        self.buf.push('{');
        self.id_field("unit_id", unit_id, c);
        // Patrol apps send epoch milliseconds.
        self.ts(ts, true, c);
        self.lon_lat(f.lon, f.lat, c);
        let _ = write!(
            self.buf,
            ",\"status\":\"{}\",\"speed_kmh\":",
            f.status.as_str()
        );
        push_fixed(&mut self.buf, f.speed_kmh, 1);
        self.buf.push('}');
        self.finish(c, cut_at)
    }

    pub fn ack(&mut self, unit_id: &str, a: &AckOut, c: &Corrupt, cut_at: f64) -> Vec<u8> {
        self.buf.clear();
        // The engine makes alert ids; escape them rather than trust them.
        let _ = write!(
            self.buf,
            "{{\"alert_id\":{},",
            serde_json::Value::from(a.alert_id.as_str())
        );
        self.id_field("unit_id", unit_id, c);
        self.ts(a.ts, false, c);
        let _ = write!(self.buf, ",\"status\":\"{}\"", a.status.as_str());
        if let Some(o) = a.outcome {
            let _ = write!(self.buf, ",\"outcome\":\"{}\"", o.as_str());
        }
        self.buf.push('}');
        self.finish(c, cut_at)
    }
}

#[cfg(test)]
mod tests {
    use super::push_fixed;

    #[test]
    fn fixed_point_matches_the_float_formatter() {
        for (x, d) in [
            (105.287_13, 6),
            (-0.5, 1),
            (-0.04, 1),
            (0.0, 2),
            (27.301_21, 6),
            (0.91, 2),
            (1_203.4, 1),
            (-12.345_678, 6),
        ] {
            let mut s = String::new();
            push_fixed(&mut s, x, d);
            let expected = format!("{x:.*}", d as usize);
            // `{:.1}` of -0.04 is "-0.0"; ours is "0.0": both are the same JSON number.
            assert_eq!(
                s.trim_start_matches('-'),
                expected.trim_start_matches('-'),
                "{x}"
            );
            assert!(serde_json::from_str::<f64>(&s).is_ok());
        }
    }
}
