//! `roadwatch roads …`: operator tools around the road network (CONTRACT.md
//! section 7), and the one place that reads a road file from disk.
//!
//! The core (`core::roads`) only sees bytes; this adapter adds the file, the
//! wall clock, stdin/stdout and logging.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::core::model::EventTime;
use crate::core::roads::{IssueLevel, LoadOptions, RoadNetwork, Stake};

/// Load issues logged one by one before the rest are summarised.
const LOGGED_ISSUES: usize = 100;

/// Reads and loads a road file. Skipped features are logged at `warn`,
/// notes at `info`; the error (unreadable file, not GeoJSON, strict
/// rejection) names the file.
pub fn load_network_file(path: &Path, opts: &LoadOptions) -> anyhow::Result<RoadNetwork> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading road network {}", path.display()))?;
    let net = RoadNetwork::from_geojson(&bytes, opts)
        .with_context(|| format!("loading road network {}", path.display()))?;
    for issue in net.issues().iter().take(LOGGED_ISSUES) {
        match issue.level {
            IssueLevel::Error => tracing::warn!(file = %path.display(), "road network: {issue}"),
            IssueLevel::Note => tracing::info!(file = %path.display(), "road network: {issue}"),
        }
    }
    if net.issues().len() > LOGGED_ISSUES {
        tracing::warn!(
            file = %path.display(),
            "road network: {} more issues not shown; `roadwatch roads stats {}` lists them all",
            net.issues().len() - LOGGED_ISSUES,
            path.display()
        );
    }
    tracing::info!(
        file = %path.display(),
        lines = net.lines().len(),
        segments = net.segment_count(),
        interchanges = net.interchanges().len(),
        zones = net.zones().len(),
        stations = net.stations().len(),
        "road network loaded"
    );
    Ok(net)
}

/// `roadwatch roads locate`.
///
/// With `point`: one JSON line, the position or `null`. Without: one output
/// line per input line, in order, for `{"lon":..,"lat":..}` lines (an
/// optional `"ts"`, RFC 3339 or epoch ms, sets the time for work zones;
/// otherwise the current time). An input line that is not such an object —
/// bad JSON, missing or out-of-range coordinates, blank — prints `null`
/// too, so output line N always answers input line N; the reason goes to
/// the log at `warn`. Only an I/O error stops the command.
pub fn locate_command(
    net: &RoadNetwork,
    point: Option<(f64, f64)>,
    mut input: impl BufRead,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Some((lon, lat)) = point {
        let position = net.locate(lon, lat, EventTime::from_ms(now_ms));
        serde_json::to_writer(&mut out, &position).context("writing position")?;
        out.write_all(b"\n").context("writing position")?;
        return out.flush().context("writing position");
    }
    let mut buffer = Vec::new();
    let mut line_number = 0usize;
    loop {
        buffer.clear();
        // Bytes, not `lines()`: a line of invalid UTF-8 is bad input, not
        // an I/O error that would end the batch.
        let read = input
            .read_until(b'\n', &mut buffer)
            .context("reading stdin")?;
        if read == 0 {
            break;
        }
        line_number += 1;
        let position = match parse_query(&buffer) {
            Ok((lon, lat, ts)) => net.locate(lon, lat, EventTime::from_ms(ts.unwrap_or(now_ms))),
            Err(reason) => {
                tracing::warn!(line = line_number, "roads locate: {reason}: printing null");
                None
            }
        };
        serde_json::to_writer(&mut out, &position).context("writing position")?;
        out.write_all(b"\n").context("writing position")?;
    }
    out.flush().context("writing position")
}

/// `{"lon":..,"lat":..,"ts":..}` → (lon, lat, ts ms).
fn parse_query(line: &[u8]) -> Result<(f64, f64, Option<i64>), String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Object(obj) = value else {
        return Err("not a JSON object".into());
    };
    let coordinate = |key: &str, limit: f64| -> Result<f64, String> {
        let v = obj
            .get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("`{key}` missing or not a number"))?;
        if !(-limit..=limit).contains(&v) {
            return Err(format!("`{key}` {v} out of range"));
        }
        Ok(v)
    };
    let lon = coordinate("lon", 180.0)?;
    let lat = coordinate("lat", 90.0)?;
    let ts = match obj.get("ts") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().ok_or("`ts` is not integer milliseconds")?),
        Some(Value::String(s)) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| format!("`ts` is not RFC 3339 ({e})"))?
                .timestamp_millis(),
        ),
        Some(_) => return Err("`ts` is neither RFC 3339 text nor epoch milliseconds".into()),
    };
    Ok((lon, lat, ts))
}

/// `roadwatch roads stats FILE`: what the file holds, per road and
/// direction, and every load issue, as text for an operator.
pub fn stats_command(
    bytes_path: &Path,
    opts: &LoadOptions,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(bytes_path)
        .with_context(|| format!("reading road network {}", bytes_path.display()))?;
    let net = RoadNetwork::from_geojson(&bytes, opts)
        .with_context(|| format!("loading road network {}", bytes_path.display()))?;
    let s = net.stats();
    let w = &mut out;
    writeln!(w, "road network {}", bytes_path.display())?;
    writeln!(
        w,
        "{} roads, {} lines, {} segments, {:.1} km of line; snap distance {} m",
        s.roads.len(),
        s.lines,
        s.segments,
        s.length_km,
        net.max_snap_m()
    )?;
    for road in &s.roads {
        writeln!(
            w,
            "\n{} {}: {} interchanges, {} service areas",
            road.road_id, road.name, road.interchanges, road.service_areas
        )?;
        for g in &road.groups {
            writeln!(
                w,
                "  {:<11} {:<4} {:>3} line(s) {:>6} segments {:>8.1} km   stakes {} – {}",
                g.kind.as_str(),
                g.direction.as_str(),
                g.lines,
                g.segments,
                g.length_km,
                Stake(g.stake_min_m),
                Stake(g.stake_max_m)
            )?;
        }
    }
    writeln!(w, "\ninterchanges: {}", s.interchanges)?;
    let zones: Vec<String> = s.zones.iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(
        w,
        "zones: {}",
        if zones.is_empty() {
            "none".to_string()
        } else {
            zones.join(", ")
        }
    )?;
    writeln!(
        w,
        "weather stations: {} ({} more than 1 km from any carriageway)",
        s.stations, s.stations_off_road
    )?;
    for st in net.stations() {
        match &st.road {
            Some(r) => writeln!(
                w,
                "  {:<12} {}: {} {} ({:.0} m from the centre line)",
                &*st.station_id,
                &*st.name,
                &*r.road_id,
                Stake(r.stake_m),
                r.offset_m
            )?,
            None => writeln!(w, "  {:<12} {}: off road", &*st.station_id, &*st.name)?,
        }
    }
    let sources: Vec<String> = s
        .stake_sources
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(w, "stakes by source (lines): {}", sources.join(", "))?;
    writeln!(
        w,
        "issues: {} error(s) (features skipped), {} note(s)",
        s.issue_errors, s.issue_notes
    )?;
    for issue in net.issues() {
        writeln!(w, "  {issue}")?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_lines() {
        assert_eq!(
            parse_query(br#"{"lon":105.1,"lat":27.2}"#),
            Ok((105.1, 27.2, None))
        );
        assert_eq!(
            parse_query(br#"{"lon":105.1,"lat":27.2,"ts":"2026-11-28T21:15:30.120+08:00"}"#),
            Ok((105.1, 27.2, Some(1_795_871_730_120)))
        );
        assert_eq!(
            parse_query(br#"{"lon":1,"lat":2,"ts":5}"#),
            Ok((1.0, 2.0, Some(5)))
        );
        for bad in [
            &b"{"[..],
            b"[1,2]",
            br#"{"lon":1}"#,
            br#"{"lon":"1","lat":2}"#,
            br#"{"lon":1,"lat":95}"#,
            b"",
            b"\xff\n",
        ] {
            assert!(parse_query(bad).is_err(), "{bad:?}");
        }
    }
}
