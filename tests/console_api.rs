//! The console's HTTP API (docs/CONSOLE.md, CONTRACT section 8) over a real listener:
//! who may ask what, what a refused request writes (nothing), and live events that a
//! reconnecting page resumes without a gap. The records the console sends are caught by
//! a recording outbox here; the console against the real broker is tests/console_kafka.rs.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roadwatch::core::model::Stream;
use roadwatch::core::roads::{LoadOptions, RoadNetwork};
use roadwatch::io::console::auth::Accounts;
use roadwatch::io::console::picture::StreamPos;
use roadwatch::io::console::{serve, Console, ConsoleParts, Outbox};
use roadwatch::io::metrics::Metrics;
use serde_json::{json, Value};

const ROADS: &[u8] = include_bytes!("../config/roads/bijie.geojson");

#[derive(Default)]
struct Recorder(Mutex<Vec<(Stream, String, Value)>>);

impl Outbox for Recorder {
    fn send(
        &self,
        stream: Stream,
        key: String,
        value: Value,
    ) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
        self.0.lock().unwrap().push((stream, key, value));
        Box::pin(async { Ok(()) })
    }
}

struct Rig {
    base: String,
    console: Arc<Console>,
    sent: Arc<Recorder>,
    metrics: Arc<Metrics>,
    _rt: tokio::runtime::Runtime,
}

fn rig() -> Rig {
    let network = Arc::new(
        RoadNetwork::from_geojson(ROADS, &LoadOptions::default()).expect("shipped network"),
    );
    let mut accounts = Accounts::default();
    accounts.add_operator("op.zhang", "correct horse");
    accounts.add_unit("P-01", "tok-p01");
    accounts.add_unit("P-02", "tok-p02");
    let sent = Arc::new(Recorder::default());
    let metrics = Arc::new(Metrics::new());
    let settings = roadwatch::config::defaults();
    let console = Console::new(ConsoleParts {
        accounts,
        session_secret: "test key".into(),
        session_ttl_ms: 3_600_000,
        login_max_failures: 3,
        outbox: sent.clone(),
        roads_geojson: ROADS.to_vec(),
        network,
        dispatch: settings.engine.dispatch.clone(),
        metrics: Some(metrics.clone()),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr: SocketAddr = rt
        .block_on(serve("127.0.0.1:0".parse().unwrap(), console.clone()))
        .unwrap();
    Rig {
        base: format!("http://{addr}"),
        console,
        sent,
        metrics,
        _rt: rt,
    }
}

fn alert(id: &str, status: &str, unit: Option<&str>) -> Value {
    json!({
        "alert_id": id, "kind": "pedestrian", "subtype": "pedestrian", "severity": "critical",
        "status": status, "event_ts": "2026-11-28T21:15:30.120+08:00",
        "location": {"lon": 106.0117, "lat": 27.0449, "road_id": "G76", "road_name": "厦蓉高速",
                     "direction": "up", "stake": "K1154+953", "stake_m": 1154953, "structure": "tunnel"},
        "summary": "G76 隧道内发现行人", "details": {},
        "dispatch": unit.map(|u| json!({"unit_id": u, "eta_s": 120, "route_m": 2000, "attempt": 1})),
        "source_event_ids": ["cam-1-000001"],
    })
}

/// A signed-in client: the session cookie and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

fn status_and_body(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("transport: {e}"),
    }
}

impl Rig {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn login(&self, body: Value) -> (u16, Option<Session>) {
        match ureq::post(&self.url("/api/login")).send_string(&body.to_string()) {
            Ok(r) => {
                let cookie = r.header("set-cookie").unwrap_or_default().to_owned();
                assert!(
                    cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
                    "{cookie}"
                );
                let cookie = cookie.split(';').next().unwrap().to_owned();
                let me: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
                let csrf = me["csrf"].as_str().unwrap().to_owned();
                (200, Some(Session { cookie, csrf }))
            }
            Err(ureq::Error::Status(code, _)) => (code, None),
            Err(e) => panic!("transport: {e}"),
        }
    }

    fn operator(&self) -> Session {
        self.login(json!({"user":"op.zhang","password":"correct horse"}))
            .1
            .unwrap()
    }

    fn unit(&self, id: &str, token: &str) -> Session {
        self.login(json!({"unit_id": id, "token": token}))
            .1
            .unwrap()
    }

    fn get(&self, s: Option<&Session>, path: &str) -> (u16, String) {
        let mut req = ureq::get(&self.url(path));
        if let Some(s) = s {
            req = req.set("Cookie", &s.cookie);
        }
        status_and_body(req.call())
    }

    fn post(&self, s: &Session, path: &str, body: &str, csrf: bool) -> (u16, String) {
        let mut req = ureq::post(&self.url(path)).set("Cookie", &s.cookie);
        if csrf {
            req = req.set("X-CSRF-Token", &s.csrf);
        }
        status_and_body(req.send_string(body))
    }
}

#[test]
fn nothing_but_the_pages_and_the_login_without_a_session() {
    let r = rig();
    for path in [
        "/api/alerts",
        "/api/units",
        "/api/events",
        "/api/roads",
        "/api/me",
        "/api/unit/dispatches",
    ] {
        assert_eq!(r.get(None, path).0, 401, "{path}");
    }
    for path in ["/", "/unit", "/static/vendor/leaflet/leaflet.js"] {
        assert_eq!(r.get(None, path).0, 200, "{path}");
    }
    let (code, _) = status_and_body(
        ureq::post(&r.url("/api/actions"))
            .send_string(r#"{"alert_id":"a","action":"acknowledge"}"#),
    );
    assert_eq!(code, 401);
    // A forged cookie is no session.
    let forged = Session {
        cookie: "rw_session=dXxQLTAxfDk5OTk5OTk5OTk5OTk.AAAA".into(),
        csrf: String::new(),
    };
    assert_eq!(r.get(Some(&forged), "/api/me").0, 401);
    assert!(r.sent.0.lock().unwrap().is_empty());
}

#[test]
fn failed_logins_are_refused_then_limited_and_counted() {
    let r = rig();
    for _ in 0..3 {
        assert_eq!(
            r.login(json!({"user":"op.zhang","password":"wrong"})).0,
            401
        );
    }
    // The limit holds for the account even with the right password now.
    assert_eq!(
        r.login(json!({"user":"op.zhang","password":"correct horse"}))
            .0,
        429
    );
    assert_eq!(
        r.login(json!({"unit_id":"P-01","token":"nope"})).0,
        429,
        "same address"
    );
    let m = r.metrics.render();
    assert!(
        m.contains("roadwatch_console_logins_total{result=\"failed\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("roadwatch_console_logins_total{result=\"limited\"} 2"),
        "{m}"
    );
    assert_eq!(r.login(json!({"user":"op.zhang"})).0, 400, "half a login");
}

#[test]
fn an_operator_sees_the_open_alerts_and_acts_with_the_csrf_token_only() {
    let r = rig();
    r.console.alert(
        StreamPos {
            partition: 0,
            offset: 0,
        },
        alert("a1", "new", Some("P-01")),
    );
    r.console.alert(
        StreamPos {
            partition: 0,
            offset: 1,
        },
        alert("a1", "update", Some("P-01")),
    );
    r.console.alert(
        StreamPos {
            partition: 0,
            offset: 2,
        },
        alert("a2", "new", None),
    );
    r.console.alert(
        StreamPos {
            partition: 0,
            offset: 3,
        },
        alert("a2", "cleared", None),
    );
    let op = r.operator();
    let (code, body) = r.get(Some(&op), "/api/alerts");
    assert_eq!(code, 200);
    let open: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(open.as_array().unwrap().len(), 1, "a2 is closed: {open}");
    assert_eq!(open[0]["status"], "update");
    assert_eq!(open[0]["history"][0]["status"], "new");

    let ack = r#"{"alert_id":"a1","action":"acknowledge"}"#;
    assert_eq!(
        r.post(&op, "/api/actions", ack, false).0,
        403,
        "no CSRF token"
    );
    let (code, body) = r.post(&op, "/api/actions", ack, true);
    assert_eq!(code, 202, "{body}");
    // Refused, each with the field named, and nothing written.
    for (body, field) in [
        (r#"{"alert_id":"a1","action":"delete"}"#, "action"),
        (r#"{"alert_id":"a1","action":"close"}"#, "outcome"),
        (
            r#"{"alert_id":"a1","action":"close","outcome":"maybe"}"#,
            "outcome",
        ),
        (
            r#"{"alert_id":"a1","action":"acknowledge","operator_id":"op.li"}"#,
            "operator_id",
        ),
        ("not json", "JSON"),
    ] {
        let (code, msg) = r.post(&op, "/api/actions", body, true);
        assert_eq!(code, 400, "{body}: {msg}");
        assert!(msg.contains(field), "{body}: {msg}");
    }
    let (code, _) = r.post(
        &op,
        "/api/actions",
        r#"{"alert_id":"a2","action":"acknowledge"}"#,
        true,
    );
    assert_eq!(code, 404, "a closed alert");
    let sent = r.sent.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (stream, key, value) = &sent[0];
    assert_eq!((*stream, key.as_str()), (Stream::Operator, "a1"));
    assert_eq!(value["operator_id"], "op.zhang", "from the session");
    assert!(value["action_id"].as_str().is_some_and(|a| !a.is_empty()));
    assert!(value["ts"].as_i64().is_some());
}

#[test]
fn a_unit_answers_only_its_own_dispatches() {
    let r = rig();
    r.console.alert(
        StreamPos {
            partition: 0,
            offset: 0,
        },
        alert("a1", "new", Some("P-01")),
    );
    r.console.alert(
        StreamPos {
            partition: 0,
            offset: 1,
        },
        alert("a2", "new", Some("P-02")),
    );
    let p1 = r.unit("P-01", "tok-p01");
    let (code, body) = r.get(Some(&p1), "/api/unit/dispatches");
    assert_eq!(code, 200);
    let d: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["current"]["alert_id"], "a1");
    assert_eq!(r.get(Some(&p1), "/api/alerts").0, 403, "operators only");
    let mine = r#"{"alert_id":"a1","status":"accepted"}"#;
    let theirs = r#"{"alert_id":"a2","status":"accepted"}"#;
    let forged = r#"{"alert_id":"a2","unit_id":"P-02","status":"accepted"}"#;
    assert_eq!(r.post(&p1, "/api/unit/ack", theirs, true).0, 403);
    assert_eq!(r.post(&p1, "/api/unit/ack", forged, true).0, 403);
    let (code, msg) = r.post(
        &p1,
        "/api/unit/ack",
        r#"{"alert_id":"a1","status":"maybe"}"#,
        true,
    );
    assert_eq!(code, 400, "{msg}");
    assert_eq!(
        r.post(&p1, "/api/unit/ack", mine, false).0,
        403,
        "no CSRF token"
    );
    assert_eq!(r.post(&p1, "/api/unit/ack", mine, true).0, 202);
    // A script with the unit's token: no cookie, no CSRF token needed.
    let (code, _) = status_and_body(
        ureq::post(&r.url("/api/unit/position"))
            .set("Authorization", "Bearer tok-p01")
            .send_string(r#"{"lon":106.02,"lat":27.046,"status":"busy","speed_kmh":40}"#),
    );
    assert_eq!(code, 202);
    let sent = r.sent.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].0, Stream::Ack);
    assert_eq!(sent[0].2["unit_id"], "P-01", "from the credential");
    assert_eq!(
        (sent[1].0, sent[1].2["unit_id"].as_str()),
        (Stream::Patrol, Some("P-01"))
    );
}

/// Reads SSE events (event name, id, data) until `ready` plus `more` events, or a time-out.
fn read_events(
    r: &Rig,
    s: &Session,
    last_id: Option<&str>,
    more: usize,
    push: impl FnOnce(),
) -> Vec<(String, Option<String>, Value)> {
    let mut req = ureq::get(&r.url("/api/events"))
        .set("Cookie", &s.cookie)
        .timeout(Duration::from_secs(10));
    if let Some(id) = last_id {
        req = req.set("Last-Event-ID", id);
    }
    let resp = req.call().expect("the event stream opens");
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let mut lines = BufReader::new(resp.into_reader()).lines();
    let mut out = Vec::new();
    let (mut event, mut id, mut data) = (String::new(), None, String::new());
    let mut after_ready = None;
    let mut push = Some(push);
    while let Some(Ok(line)) = lines.next() {
        if line.is_empty() {
            if !event.is_empty() {
                let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                out.push((std::mem::take(&mut event), id.take(), v));
                data.clear();
                if out.last().unwrap().0 == "ready" {
                    after_ready = Some(out.len());
                    if let Some(p) = push.take() {
                        p();
                    }
                }
                if after_ready.is_some_and(|n| out.len() >= n + more) {
                    break;
                }
            }
            continue;
        }
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    out
}

#[test]
fn live_events_resume_after_the_last_event_id_and_a_unit_hears_only_its_own() {
    let r = rig();
    r.console.alert(
        StreamPos {
            partition: 0,
            offset: 0,
        },
        alert("a1", "new", Some("P-01")),
    );
    r.console.alert(
        StreamPos {
            partition: 1,
            offset: 0,
        },
        alert("a2", "new", Some("P-02")),
    );
    r.console
        .position(&json!({"unit_id":"P-01","ts":1,"lon":106.02,"lat":27.046,"status":"busy"}));
    let op = r.operator();
    let c = r.console.clone();
    let first = read_events(&r, &op, None, 1, move || {
        c.alert(
            StreamPos {
                partition: 0,
                offset: 1,
            },
            alert("a1", "update", Some("P-01")),
        );
    });
    let names: Vec<&str> = first.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        ["alert", "alert", "unit", "ready", "alert"],
        "{first:?}"
    );
    assert_eq!(first[2].2["alert_id"], "a1", "the unit's assignment");
    let live = first.last().unwrap();
    assert_eq!(live.2["status"], "update");
    let seen_id = first[1].1.clone().expect("alert events carry an id");

    // Away after the second document; meanwhile two more came.
    r.console.alert(
        StreamPos {
            partition: 1,
            offset: 1,
        },
        alert("a2", "cleared", Some("P-02")),
    );
    let back = read_events(&r, &op, Some(&seen_id), 0, || {});
    let docs: Vec<(String, String)> = back
        .iter()
        .filter(|e| e.0 == "alert")
        .map(|e| {
            (
                e.2["alert_id"].as_str().unwrap().into(),
                e.2["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        docs,
        [
            ("a1".to_string(), "update".to_string()),
            ("a2".into(), "cleared".into())
        ],
        "exactly what came after {seen_id}"
    );

    let p2 = r.unit("P-02", "tok-p02");
    let theirs = read_events(&r, &p2, None, 0, || {});
    assert!(
        theirs
            .iter()
            .filter(|e| e.0 == "alert")
            .all(|e| e.2["alert_id"] == "a2"),
        "{theirs:?}"
    );
    assert!(theirs
        .iter()
        .all(|e| e.0 != "unit" || e.2["unit_id"] == "P-02"));
}

#[test]
fn candidates_are_the_units_on_duty_quickest_first() {
    let r = rig();
    r.console.alert(
        StreamPos {
            partition: 0,
            offset: 0,
        },
        alert("a1", "new", None),
    );
    // Near the tunnel, farther east, off duty.
    r.console.position(
        &json!({"unit_id":"P-01","ts":1,"lon":106.0204,"lat":27.0462,"status":"available"}),
    );
    r.console
        .position(&json!({"unit_id":"P-02","ts":1,"lon":106.05,"lat":27.05,"status":"busy"}));
    r.console
        .position(&json!({"unit_id":"P-03","ts":1,"lon":106.012,"lat":27.045,"status":"off_duty"}));
    let op = r.operator();
    let (code, body) = r.get(Some(&op), "/api/candidates?alert_id=a1");
    assert_eq!(code, 200, "{body}");
    let c: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = c
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["unit_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{c}");
    assert!(!ids.contains(&"P-03"));
    let etas: Vec<i64> = c
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["eta_s"].as_i64().unwrap())
        .collect();
    assert!(etas.windows(2).all(|w| w[0] <= w[1]), "{c}");
    assert_eq!(r.get(Some(&op), "/api/candidates?alert_id=nope").0, 404);
}

#[test]
fn operators_see_each_weather_stations_latest_reading_and_units_do_not() {
    let r = rig();
    let reading = |ts: i64, vis: f64| {
        json!({"event_id": format!("wx-01-{ts}"), "station_id": "wx-01", "ts": ts,
               "lon": 106.022175, "lat": 27.046561, "visibility_m": vis})
    };
    r.console.station(reading(2_000, 150.0));
    r.console.station(reading(1_000, 900.0)); // older, read late: not the latest
    let op = r.operator();
    let (code, body) = r.get(Some(&op), "/api/stations");
    assert_eq!(code, 200);
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s.as_array().unwrap().len(), 1);
    assert_eq!(s[0]["visibility_m"], 150.0);
    let events = read_events(&r, &op, None, 0, || {});
    assert!(
        events
            .iter()
            .any(|e| e.0 == "station" && e.2["station_id"] == "wx-01"),
        "{events:?}"
    );
    let unit = r.unit("P-01", "tok-p01");
    assert_eq!(r.get(Some(&unit), "/api/stations").0, 403);
    let theirs = read_events(&r, &unit, None, 0, || {});
    assert!(theirs.iter().all(|e| e.0 != "station"), "{theirs:?}");
}
