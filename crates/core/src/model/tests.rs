//! Decoding and validation: one test per rejection, and the accepted forms.
use super::*;
use crate::settings::InputLimits;

const NOW: i64 = 1_795_871_730_120; // 2026-11-28T21:15:30.120+08:00

fn ctx() -> DecodeContext {
    DecodeContext {
        now_ms: Some(NOW),
        max_future_skew_ms: 300_000,
        limits: crate::settings::InputLimits::DEFAULT,
    }
}

fn decode(stream: Stream, json: &str) -> Result<Record, Reject> {
    decode_record(stream, json.as_bytes(), &ctx())
}

fn reason(stream: Stream, json: &str) -> RejectReason {
    match decode(stream, json) {
        Ok(r) => panic!("expected a rejection, decoded {r:?}"),
        Err(e) => e.reason,
    }
}

const CAMERA: &str = r#"{"event_id":"cam-G76-0042-000193","camera_id":"cam-G76-0042","ts":"2026-11-28T21:15:30.120+08:00",
 "detections":[{"class":"pedestrian","confidence":0.91,"lon":105.28713,"lat":27.30121,"track_id":"17"}]}"#;
const PLATE: &str = r#"{"event_id":"anpr-G76-K1180-U-000123","reader_id":"anpr-G76-K1180-U","ts":1795871730120,
 "plate":"贵F12345","plate_color":"blue","vehicle_class":"car","lon":105.1012,"lat":27.2501,"confidence":0.97}"#;
const WEATHER: &str = r#"{"event_id":"wx-07-000881","station_id":"wx-07","ts":"2026-11-28T21:15:30+08:00","lon":105.33,"lat":27.21,
 "visibility_m":180.0,"precipitation_mm_h":0.0,"wind_speed_ms":5.2,"wind_gust_ms":8.1,
 "road_surface_temp_c":-0.5,"road_surface_state":"wet","air_temp_c":1.0}"#;
const PATROL: &str = r#"{"unit_id":"P-12","ts":"2026-11-28T13:15:30Z","lon":105.30,"lat":27.29,"status":"available","speed_kmh":62.0}"#;
const ACK: &str = r#"{"alert_id":"ped-G76-up-1203450-20261128T1315","unit_id":"P-12","ts":1795871730000,"status":"accepted"}"#;

/// Replaces `from` (which must occur) in a valid example.
fn with(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "{from} not in example");
    base.replacen(from, to, 1)
}

#[test]
fn track_ids_are_text_or_integers_and_kept_for_the_classes_detectors_follow() {
    let frame = |dets: &str| {
        format!(
            r#"{{"event_id":"e1","camera_id":"c1","ts":"2026-11-28T21:15:30.120+08:00","detections":[{dets}]}}"#
        )
    };
    let det = |class: &str, track: &str| {
        format!(
            r#"{{"class":"{class}","confidence":0.9,"lon":105.3,"lat":27.3,"track_id":{track}}}"#
        )
    };
    let dets = [
        det("pedestrian", "17"),
        det("bicycle", r#""b-\u0037""#),
        det("vehicle", r#""v9""#),
        det("tricycle", "-3"),
    ]
    .join(",");
    let Record::Camera(c) = decode(Stream::Camera, &frame(&dets)).unwrap() else {
        panic!()
    };
    let ids: Vec<Option<&str>> = c.detections.iter().map(|d| d.track_id.as_deref()).collect();
    // An escaped string is decoded; a vehicle's id is checked, then dropped.
    assert_eq!(ids, [Some("17"), Some("b-7"), None, Some("-3")]);
    // Neither text nor an integer: the field's type is wrong, whatever the class.
    for bad in ["1.5", "true", r#"{"a":1}"#] {
        let err = decode(Stream::Camera, &frame(&det("vehicle", bad))).unwrap_err();
        assert_eq!(err.reason, RejectReason::InvalidFieldType, "{bad}");
        assert!(err.detail.contains("track_id"), "{}", err.detail);
    }
}

#[test]
fn contract_examples_decode() {
    let Record::Camera(c) = decode(Stream::Camera, CAMERA).unwrap() else {
        panic!()
    };
    assert_eq!(c.ts.ms(), NOW);
    assert_eq!(c.detections.len(), 1);
    assert_eq!(c.detections[0].class, DetectionClass::Pedestrian);
    assert_eq!(c.detections[0].track_id.as_deref(), Some("17"));
    let Record::Plate(p) = decode(Stream::Plate, PLATE).unwrap() else {
        panic!()
    };
    assert_eq!(p.plate, "贵F12345");
    assert_eq!(p.ts.ms(), NOW);
    assert_eq!(p.plate_color, PlateColor::Blue);
    let Record::Weather(w) = decode(Stream::Weather, WEATHER).unwrap() else {
        panic!()
    };
    assert_eq!(w.visibility_m, Some(180.0));
    assert_eq!(w.road_surface_state, Some(RoadSurfaceState::Wet));
    let Record::Patrol(u) = decode(Stream::Patrol, PATROL).unwrap() else {
        panic!()
    };
    assert_eq!(u.status, UnitStatus::Available);
    let Record::Ack(a) = decode(Stream::Ack, ACK).unwrap() else {
        panic!()
    };
    assert_eq!(a.status, AckStatus::Accepted);
}

#[test]
fn both_timestamp_forms_give_the_same_instant() {
    let a = decode(Stream::Patrol, PATROL).unwrap();
    let millis = with(PATROL, r#""2026-11-28T13:15:30Z""#, "1795871730000");
    let b = decode(Stream::Patrol, &millis).unwrap();
    assert_eq!(a.ts(), b.ts());
}

#[test]
fn unknown_fields_and_unknown_classes_are_ignored() {
    let extra = with(
        CAMERA,
        r#""camera_id""#,
        r#""vendor":{"x":[1,2]},"camera_id""#,
    );
    assert!(decode(Stream::Camera, &extra).is_ok());
    let ufo = with(CAMERA, r#""class":"pedestrian""#, r#""class":"ufo""#);
    let Record::Camera(c) = decode(Stream::Camera, &ufo).unwrap() else {
        panic!()
    };
    assert!(c.detections.is_empty());
    let empty = r#"{"event_id":"e1","camera_id":"c1","ts":1795871730000,"detections":[]}"#;
    assert!(decode(Stream::Camera, empty).is_ok());
}

#[test]
fn missing_measurements_are_none_not_zero() {
    let w = r#"{"event_id":"w1","station_id":"wx-01","ts":1795871730000,"lon":105.3,"lat":27.2,"visibility_m":null}"#;
    let Record::Weather(w) = decode(Stream::Weather, w).unwrap() else {
        panic!()
    };
    assert_eq!(w.visibility_m, None);
    assert_eq!(w.wind_gust_mps, None);
    assert_eq!(w.road_surface_state, None);
}

#[test]
fn invalid_json() {
    assert_eq!(
        reason(Stream::Camera, "{not json"),
        RejectReason::InvalidJson
    );
    assert_eq!(reason(Stream::Camera, ""), RejectReason::InvalidJson);
    assert_eq!(reason(Stream::Camera, "[1,2]"), RejectReason::InvalidJson);
    assert_eq!(reason(Stream::Camera, "42"), RejectReason::InvalidJson);
    assert_eq!(
        reason(Stream::Camera, &format!("{CAMERA} trailing")),
        RejectReason::InvalidJson
    );
    let not_utf8 = [b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'];
    let err = decode_record(Stream::Camera, &not_utf8, &ctx()).unwrap_err();
    assert_eq!(err.reason, RejectReason::InvalidJson);
    assert_eq!(err.detail, "invalid UTF-8 at byte 2");
    // JSON has no NaN: a bare NaN is not JSON at all.
    assert_eq!(
        reason(Stream::Patrol, &with(PATROL, "105.30", "NaN")),
        RejectReason::InvalidJson
    );
}

#[test]
fn missing_field() {
    for (stream, base, field) in [
        (Stream::Camera, CAMERA, r#""camera_id":"cam-G76-0042","#),
        (
            Stream::Camera,
            CAMERA,
            r#""detections":[{"class":"pedestrian","confidence":0.91,"lon":105.28713,"lat":27.30121,"track_id":"17"}]"#,
        ),
        (Stream::Plate, PLATE, r#""plate":"贵F12345","#),
        (Stream::Weather, WEATHER, r#""lon":105.33,"#),
        (Stream::Patrol, PATROL, r#","status":"available""#),
        (
            Stream::Ack,
            ACK,
            r#""alert_id":"ped-G76-up-1203450-20261128T1315","#,
        ),
    ] {
        let without = with(base, field, "")
            .replace(",\n ,", ",")
            .replace(",\n }", "}");
        assert_eq!(
            reason(stream, &without),
            RejectReason::MissingField,
            "{field}"
        );
    }
    // An explicit null for a required field is as missing as an absent one.
    let e = decode(
        Stream::Patrol,
        &with(PATROL, r#""lat":27.29"#, r#""lat":null"#),
    )
    .unwrap_err();
    assert_eq!(e.reason, RejectReason::MissingField);
    assert!(e.detail.contains("lat"), "{}", e.detail);
    let e = decode(Stream::Camera, &with(CAMERA, r#""confidence":0.91,"#, "")).unwrap_err();
    assert_eq!(e.reason, RejectReason::MissingField);
    assert!(
        e.detail.contains("detections[0].confidence"),
        "{}",
        e.detail
    );
}

#[test]
fn invalid_field_type_names_the_path() {
    let e = decode(Stream::Patrol, &with(PATROL, "105.30", r#""105.30""#)).unwrap_err();
    assert_eq!(e.reason, RejectReason::InvalidFieldType);
    assert!(e.detail.starts_with("lon"), "{}", e.detail);
    let e = decode(Stream::Camera, &with(CAMERA, "0.91", "true")).unwrap_err();
    assert_eq!(e.reason, RejectReason::InvalidFieldType);
    assert!(
        e.detail.contains("detections[0].confidence"),
        "{}",
        e.detail
    );
    let e = decode(
        Stream::Camera,
        r#"{"event_id":"e","camera_id":"c","ts":1,"detections":"none"}"#,
    )
    .unwrap_err();
    assert_eq!(e.reason, RejectReason::InvalidFieldType);
    assert_eq!(
        reason(Stream::Weather, &with(WEATHER, "1.0}", "true}")),
        RejectReason::InvalidFieldType
    );
    assert_eq!(
        reason(
            Stream::Ack,
            &with(ACK, r#""ts":1795871730000"#, r#""ts":true"#)
        ),
        RejectReason::InvalidFieldType
    );
}

#[test]
fn invalid_timestamp() {
    for ts in [
        r#""2026-11-28 21:15:30""#,
        r#""2026-11-28T21:15:30""#,
        r#""soon""#,
        "1795871730000.5",
        "-5",
    ] {
        let bad = with(ACK, "1795871730000", ts);
        assert_eq!(
            reason(Stream::Ack, &bad),
            RejectReason::InvalidTimestamp,
            "{ts}"
        );
    }
}

#[test]
fn future_timestamp_respects_the_configured_skew() {
    let ok = with(ACK, "1795871730000", &(NOW + 300_000).to_string());
    assert!(
        decode(Stream::Ack, &ok).is_ok(),
        "exactly the skew is allowed"
    );
    let bad = with(ACK, "1795871730000", &(NOW + 300_001).to_string());
    assert_eq!(reason(Stream::Ack, &bad), RejectReason::FutureTimestamp);
    // Without a reference time there is nothing to compare with.
    assert!(decode_record(Stream::Ack, bad.as_bytes(), &DecodeContext::without_clock()).is_ok());
}

#[test]
fn invalid_identifier() {
    for (stream, base, from, to) in [
        (
            Stream::Camera,
            CAMERA,
            r#""cam-G76-0042","#,
            r#""cam G76","#,
        ),
        (Stream::Camera, CAMERA, r#""cam-G76-0042-000193""#, r#""""#),
        (
            Stream::Plate,
            PLATE,
            r#""anpr-G76-K1180-U","#,
            r#""anpr/1","#,
        ),
        (
            Stream::Weather,
            WEATHER,
            r#""wx-07","#,
            r#""wx-07-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","#,
        ),
        (Stream::Patrol, PATROL, r#""P-12""#, r#""巡逻12""#),
        (Stream::Ack, ACK, r#""P-12""#, r#""P 12""#),
        (
            Stream::Ack,
            ACK,
            r#""ped-G76-up-1203450-20261128T1315""#,
            r#""ped:1""#,
        ),
    ] {
        assert_eq!(
            reason(stream, &with(base, from, to)),
            RejectReason::InvalidIdentifier,
            "{to}"
        );
    }
}

#[test]
fn coordinates_out_of_range() {
    assert_eq!(
        reason(Stream::Patrol, &with(PATROL, "27.29", "90.5")),
        RejectReason::LatOutOfRange
    );
    assert_eq!(
        reason(Stream::Patrol, &with(PATROL, "27.29", "-91")),
        RejectReason::LatOutOfRange
    );
    assert_eq!(
        reason(Stream::Patrol, &with(PATROL, "105.30", "180.01")),
        RejectReason::LonOutOfRange
    );
    assert_eq!(
        reason(Stream::Camera, &with(CAMERA, "27.30121", "123")),
        RejectReason::LatOutOfRange
    );
    assert_eq!(
        reason(Stream::Plate, &with(PLATE, "105.1012", "-200")),
        RejectReason::LonOutOfRange
    );
    // The edges themselves are valid.
    assert!(decode(Stream::Patrol, &with(PATROL, "27.29", "-90")).is_ok());
    assert!(decode(Stream::Patrol, &with(PATROL, "105.30", "180")).is_ok());
}

#[test]
fn confidence_out_of_range() {
    assert_eq!(
        reason(Stream::Camera, &with(CAMERA, "0.91", "1.01")),
        RejectReason::ConfidenceOutOfRange
    );
    assert_eq!(
        reason(Stream::Camera, &with(CAMERA, "0.91", "-0.1")),
        RejectReason::ConfidenceOutOfRange
    );
    assert_eq!(
        reason(Stream::Plate, &with(PLATE, "0.97", "97")),
        RejectReason::ConfidenceOutOfRange
    );
    assert!(decode(Stream::Camera, &with(CAMERA, "0.91", "1")).is_ok());
    assert!(decode(Stream::Camera, &with(CAMERA, "0.91", "0")).is_ok());
    assert!(
        decode(Stream::Plate, &with(PLATE, r#","confidence":0.97"#, "")).is_ok(),
        "optional"
    );
}

#[test]
fn negative_measurement() {
    for (from, to) in [
        ("180.0", "-1"),
        (
            r#""precipitation_mm_h":0.0"#,
            r#""precipitation_mm_h":-0.1"#,
        ),
        ("5.2", "-5.2"),
        ("8.1", "-8.1"),
    ] {
        assert_eq!(
            reason(Stream::Weather, &with(WEATHER, from, to)),
            RejectReason::NegativeMeasurement,
            "{to}"
        );
    }
    assert_eq!(
        reason(Stream::Patrol, &with(PATROL, "62.0", "-3")),
        RejectReason::NegativeMeasurement
    );
    // Temperatures may be negative.
    assert!(decode(Stream::Weather, &with(WEATHER, "1.0}", "-12.5}")).is_ok());
    assert!(
        decode(Stream::Weather, &with(WEATHER, "180.0", "0")).is_ok(),
        "zero visibility is a reading"
    );
}

#[test]
fn invalid_plate() {
    for p in [
        "贵F1234",
        "ABC1234",
        "贵f12345",
        "贵F1234学",
        "贵F12345678",
        "",
    ] {
        let e = decode(Stream::Plate, &with(PLATE, "贵F12345", p)).unwrap_err();
        assert_eq!(e.reason, RejectReason::InvalidPlate, "{p}");
        assert!(
            p.is_empty() || !e.detail.contains(p),
            "the detail must not repeat the plate"
        );
    }
    assert!(decode(Stream::Plate, &with(PLATE, "贵F12345", "贵FD12345")).is_ok());
    assert!(decode(Stream::Plate, &with(PLATE, "贵F12345", "贵F12345D")).is_ok());
    // Escaped unicode is the same plate.
    assert!(decode(Stream::Plate, &with(PLATE, "贵F12345", "\\u8d35F12345")).is_ok());
}

#[test]
fn unknown_enum_value() {
    for (stream, base, from, to) in [
        (Stream::Plate, PLATE, r#""blue""#, r#""purple""#),
        (Stream::Plate, PLATE, r#""car""#, r#""spaceship""#),
        (Stream::Weather, WEATHER, r#""wet""#, r#""slushy""#),
        (Stream::Patrol, PATROL, r#""available""#, r#""napping""#),
        (Stream::Ack, ACK, r#""accepted""#, r#""maybe""#),
    ] {
        assert_eq!(
            reason(stream, &with(base, from, to)),
            RejectReason::UnknownEnumValue,
            "{to}"
        );
    }
}

#[test]
fn dlq_record_keeps_original_bytes() {
    let reject = Reject::new(RejectReason::InvalidJson, "x");
    let src = DlqSource {
        topic: Some("camera-detections".into()),
        partition: Some(2),
        offset: Some(41),
        line: None,
    };
    let text = DlqRecord::new(&reject, Some(Stream::Camera), src.clone(), b"{oops");
    let v = serde_json::to_value(&text).unwrap();
    assert_eq!(v["value"], "{oops");
    assert_eq!(v["reason"], "invalid_json");
    assert_eq!(v["source_topic"], "camera-detections");
    assert_eq!(v["partition"], 2);
    assert_eq!(v["offset"], 41);
    assert!(v.get("value_base64").is_none());
    let bin = DlqRecord::new(&reject, None, src, &[0xff, 0x00, 0x7b]);
    let v = serde_json::to_value(&bin).unwrap();
    assert_eq!(v["value_base64"], "/wB7");
    assert!(v.get("value").is_none());
}

// ---- hostile input (issue #19): bounded cost, a reason, never a crash ----

#[test]
fn a_record_over_the_size_limit_is_refused_unparsed() {
    let big = format!(
        r#"{{"event_id":"cam-1","camera_id":"cam-1","ts":{NOW},"detections":[],"pad":"{}"}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    for stream in Stream::ALL {
        let e = decode(stream, &big).unwrap_err();
        assert_eq!(e.reason, RejectReason::RecordTooLarge, "{stream:?}");
        assert!(e.detail.contains("input.max_record_bytes"), "{}", e.detail);
    }
    // At the limit it is parsed as usual.
    let limits = InputLimits {
        max_record_bytes: CAMERA.len(),
        ..InputLimits::DEFAULT
    };
    let at_limit = DecodeContext { limits, ..ctx() };
    assert!(decode_record(Stream::Camera, CAMERA.as_bytes(), &at_limit).is_ok());
}

#[test]
fn json_nested_ten_thousand_deep_is_invalid_json_not_a_stack_overflow() {
    let nest = |field: &str, open: &str, close: &str| {
        format!(
            r#"{{"event_id":"x-1","{field}":{}0{}}}"#,
            open.repeat(10_000),
            close.repeat(10_000)
        )
    };
    for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
        // In a field nobody reads: serde_json skips it without recursing (its skip is
        // a loop), so a valid record around it is still taken. The size limit bounds
        // the work.
        let extra = format!("{}0{}", open.repeat(10_000), close.repeat(10_000));
        let camera = format!(r#"{},"extra":{extra}}}"#, CAMERA.trim_end_matches('}'));
        let got = decode(Stream::Camera, &camera);
        assert!(got.is_ok(), "{got:?}");
        // In a field the decoder reads: refused, as bad JSON (serde's depth limit, 128)
        // or at the first value of the wrong type.
        let known = nest("detections", open, close);
        let e = decode(Stream::Camera, &known).unwrap_err();
        assert!(
            matches!(
                e.reason,
                RejectReason::InvalidJson | RejectReason::InvalidFieldType
            ),
            "{e:?}"
        );
        for stream in Stream::ALL {
            assert!(decode(stream, &nest("extra", open, close)).is_err());
        }
    }
}

#[test]
fn a_camera_event_with_too_many_detections_is_refused() {
    let one = r#"{"class":"vehicle","confidence":0.5,"lon":105.0,"lat":27.0}"#;
    let many = |n: usize| {
        format!(
            r#"{{"event_id":"cam-1","camera_id":"cam-1","ts":{NOW},"detections":[{}]}}"#,
            vec![one; n].join(",")
        )
    };
    // 100,000 detections (6 MB): over the size limit first ...
    let hostile = many(100_000);
    assert_eq!(
        reason(Stream::Camera, &hostile),
        RejectReason::RecordTooLarge
    );
    // ... and over the detection limit when a deployment allows larger records.
    let roomy = DecodeContext {
        limits: InputLimits {
            max_record_bytes: 16 * 1024 * 1024,
            ..InputLimits::DEFAULT
        },
        ..ctx()
    };
    let e = decode_record(Stream::Camera, hostile.as_bytes(), &roomy).unwrap_err();
    assert_eq!(e.reason, RejectReason::TooManyDetections);
    assert!(e.detail.starts_with("100000 detections"), "{}", e.detail);
    // The limit itself is fine.
    let limit = InputLimits::DEFAULT.max_detections;
    assert!(decode(Stream::Camera, &many(limit)).is_ok());
    assert_eq!(
        reason(Stream::Camera, &many(limit + 1)),
        RejectReason::TooManyDetections
    );
}

#[test]
fn the_dlq_copy_of_a_huge_record_is_cut_to_64_kib() {
    let reject = Reject::new(RejectReason::RecordTooLarge, "too big");
    // Multi-byte characters, so that the cut falls inside one.
    let value = "贵".repeat(4 * 1024 * 1024);
    let rec = DlqRecord::new(
        &reject,
        Some(Stream::Plate),
        DlqSource::default(),
        value.as_bytes(),
    );
    let kept = rec.value.as_deref().expect("still text");
    assert!(kept.len() <= DLQ_VALUE_MAX_BYTES && kept.len() > DLQ_VALUE_MAX_BYTES - 4);
    assert!(value.starts_with(kept));
    assert_eq!(rec.value_truncated_from, Some(value.len()));
    let json = serde_json::to_string(&rec).unwrap();
    assert!(json.len() < 2 * DLQ_VALUE_MAX_BYTES, "{}", json.len());
    // Small values are copied whole, without the field.
    let small = DlqRecord::new(&reject, None, DlqSource::default(), b"{}");
    assert_eq!(small.value_truncated_from, None);
    assert!(!serde_json::to_string(&small).unwrap().contains("truncated"));
}

#[test]
fn operator_stamps_and_closers_travel_typed_and_read_back_from_their_wire_form() {
    use super::{ClosedBy, EventTimestamp, OperatorStamp, UtcOffset};
    let at = EventTimestamp::new(
        EventTime::from_ms(1_795_838_405_000),
        UtcOffset::parse("+08:00").unwrap(),
    );
    let stamp = OperatorStamp {
        operator_id: "op.zhang".to_owned(),
        ts: at,
        text: None,
    };
    let wire = serde_json::to_string(&stamp).unwrap();
    assert_eq!(
        wire,
        r#"{"operator_id":"op.zhang","ts":"2026-11-28T12:00:05.000+08:00"}"#
    );
    assert_eq!(serde_json::from_str::<OperatorStamp>(&wire).unwrap(), stamp);
    // Untagged: the field names tell a unit from an operator.
    for by in [
        ClosedBy::Unit {
            unit_id: "P-12".to_owned(),
            ts: at,
        },
        ClosedBy::Operator {
            operator_id: "op.zhang".to_owned(),
            ts: at,
        },
    ] {
        let wire = serde_json::to_string(&by).unwrap();
        assert!(
            wire.contains(r#""ts":"2026-11-28T12:00:05.000+08:00""#),
            "{wire}"
        );
        assert_eq!(serde_json::from_str::<ClosedBy>(&wire).unwrap(), by);
    }
}
