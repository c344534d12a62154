//! The console's HTTP side (docs/CONSOLE.md): the pages, the JSON API and the live
//! events, over the shared [`Console`]. Handlers only check who asks and what they
//! send; records go out through the [`Outbox`] (Kafka, or the demo's engine).
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::{self, Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::assets;
use super::auth::{Accounts, LoginLimiter, Principal, Sessions};
use super::picture::{Cursor, Doc, DocKind, Picture, StreamPos, UnitState};
use crate::core::dispatch::{route, OnRoad, Place};
use crate::core::model::{decode_record, DecodeContext, EventTime, Stream as InputStream};
use crate::core::roads::RoadNetwork;
use crate::core::settings::DispatchSettings;
use crate::io::metrics::Metrics;

const COOKIE: &str = "rw_session";

/// Where the console's records go: the Kafka topics of CONTRACT section 2, or the
/// demo's engine. `Err` is a failure to deliver (the request gets 503).
pub trait Outbox: Send + Sync {
    fn send(
        &self,
        stream: InputStream,
        key: String,
        value: Value,
    ) -> futures::future::BoxFuture<'static, anyhow::Result<()>>;
}

/// A change the pages hear about.
#[derive(Debug, Clone)]
pub enum Event {
    Alert(Doc),
    Unit(UnitState),
    /// A weather station's latest observation (operators only).
    Station(Arc<Value>),
}

pub struct Console {
    picture: RwLock<Picture>,
    events: broadcast::Sender<Event>,
    accounts: Accounts,
    sessions: Sessions,
    limiter: LoginLimiter,
    outbox: Arc<dyn Outbox>,
    roads_geojson: Bytes,
    network: Arc<RoadNetwork>,
    dispatch: DispatchSettings,
    metrics: Option<Arc<Metrics>>,
}

pub struct ConsoleParts {
    pub accounts: Accounts,
    pub session_secret: String,
    pub session_ttl_ms: u64,
    pub login_max_failures: u32,
    pub outbox: Arc<dyn Outbox>,
    pub roads_geojson: Vec<u8>,
    pub network: Arc<RoadNetwork>,
    pub dispatch: DispatchSettings,
    pub metrics: Option<Arc<Metrics>>,
}

impl Console {
    pub fn new(p: ConsoleParts) -> Arc<Console> {
        let (events, _) = broadcast::channel(4096);
        Arc::new(Console {
            picture: RwLock::new(Picture::default()),
            events,
            accounts: p.accounts,
            sessions: Sessions::new(&p.session_secret, p.session_ttl_ms),
            limiter: LoginLimiter::new(p.login_max_failures, Duration::from_secs(300)),
            outbox: p.outbox,
            roads_geojson: Bytes::from(p.roads_geojson),
            network: p.network,
            dispatch: p.dispatch,
            metrics: p.metrics,
        })
    }

    /// An alert document from the alerts stream (the feed calls this in stream order).
    pub fn alert(&self, pos: StreamPos, value: Value) {
        let Ok(mut p) = self.picture.write() else {
            return;
        };
        let Some(doc) = p.apply_alert(pos, value) else {
            return;
        };
        // Only a unit this alert is or was addressed to can have gained or lost it.
        let units: Vec<UnitState> = doc
            .units
            .iter()
            .filter_map(|u| p.refreshed_unit(u))
            .collect();
        drop(p);
        let _ = self.events.send(Event::Alert(doc));
        for u in units {
            let _ = self.events.send(Event::Unit(u));
        }
    }

    /// A unit's answer from `dispatch-acks` (at [`StreamPos::ack`]).
    pub fn ack(&self, pos: StreamPos, value: Value) {
        let doc = match self.picture.write() {
            Ok(mut p) => p.apply_ack(pos, value),
            Err(_) => None,
        };
        if let Some(d) = doc {
            let _ = self.events.send(Event::Alert(d));
        }
    }

    /// A weather station's observation from `weather-observations`.
    pub fn station(&self, value: Value) {
        let latest = match self.picture.write() {
            Ok(mut p) => p.apply_station(value),
            Err(_) => None,
        };
        if let Some(v) = latest {
            let _ = self.events.send(Event::Station(Arc::new(v)));
        }
    }

    /// A unit's position report from `patrol-positions`.
    pub fn position(&self, value: &Value) {
        let state = match self.picture.write() {
            Ok(mut p) => p.apply_unit(value),
            Err(_) => None,
        };
        if let Some(s) = state {
            let _ = self.events.send(Event::Unit(s));
        }
    }

    fn now_ms() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn count_login(&self, result: &str) {
        if let Some(m) = &self.metrics {
            m.console_logins.with_label_values(&[result]).inc();
        }
    }
}

/// An API error: a status and a message that names what is wrong.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

type ApiResult<T> = Result<T, ApiError>;

/// How a request proved who it is.
struct Caller {
    who: Principal,
    /// The session cookie, when it came with one (a POST then needs the CSRF token).
    cookie: Option<String>,
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn caller(c: &Console, headers: &HeaderMap) -> ApiResult<Caller> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return c
            .accounts
            .bearer(token.trim())
            .map(|who| Caller { who, cookie: None })
            .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "unknown bearer token".into()));
    }
    let cookie = cookie_value(headers)
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "sign in first".into()))?;
    let who = c
        .sessions
        .check(&cookie, Console::now_ms())
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "the session has ended; sign in again".into(),
            )
        })?;
    Ok(Caller {
        who,
        cookie: Some(cookie),
    })
}

/// A POST with a cookie session must carry the session's CSRF token.
fn poster(c: &Console, headers: &HeaderMap) -> ApiResult<Caller> {
    let k = caller(c, headers)?;
    if let Some(cookie) = &k.cookie {
        let token = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !c.sessions.csrf_ok(cookie, token) {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token header".into(),
            ));
        }
    }
    Ok(k)
}

fn operator(k: &Caller) -> ApiResult<&str> {
    match &k.who {
        Principal::Operator(id) => Ok(id),
        Principal::Unit(_) => Err(ApiError(StatusCode::FORBIDDEN, "operators only".into())),
    }
}

fn unit(k: &Caller) -> ApiResult<&str> {
    match &k.who {
        Principal::Unit(id) => Ok(id),
        Principal::Operator(_) => Err(ApiError(StatusCode::FORBIDDEN, "patrol units only".into())),
    }
}

fn json_body(body: &Bytes) -> ApiResult<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be a JSON object")),
        Err(e) => Err(bad(format!("the body is not JSON: {e}"))),
    }
}

fn me_body(c: &Console, who: &Principal, cookie: &str) -> Value {
    let csrf = c.sessions.csrf(cookie);
    match who {
        Principal::Operator(id) => json!({"role":"operator","operator_id":id,"csrf":csrf}),
        Principal::Unit(id) => json!({"role":"unit","unit_id":id,"csrf":csrf}),
    }
}

fn set_cookie(value: &str, max_age_s: u64) -> String {
    format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}")
}

async fn login(
    State(c): State<Arc<Console>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> ApiResult<Response> {
    let m = json_body(&body)?;
    let text = |k: &str| m.get(k).and_then(Value::as_str);
    let (account, attempt): (String, Box<dyn Fn() -> Option<Principal> + Send>) = match (
        text("user"),
        text("password"),
        text("unit_id"),
        text("token"),
    ) {
        (Some(u), Some(p), None, None) => {
            let (c2, u2, p2) = (c.clone(), u.to_owned(), p.to_owned());
            (
                format!("o:{u}"),
                Box::new(move || c2.accounts.operator(&u2, &p2)),
            )
        }
        (None, None, Some(u), Some(t)) => {
            let (c2, u2, t2) = (c.clone(), u.to_owned(), t.to_owned());
            (
                format!("u:{u}"),
                Box::new(move || c2.accounts.unit(&u2, &t2)),
            )
        }
        _ => {
            return Err(bad(
                "send {\"user\",\"password\"} or {\"unit_id\",\"token\"}",
            ))
        }
    };
    let ip = addr.ip().to_string();
    let keys = [ip.as_str(), account.as_str()];
    if c.limiter.blocked(&keys, Instant::now()) {
        c.count_login("limited");
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed sign-ins; wait a few minutes".into(),
        ));
    }
    // argon2 takes tens of milliseconds of CPU: off the async workers.
    let who = tokio::task::spawn_blocking(attempt)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let Some(who) = who else {
        c.limiter.failed(&keys, Instant::now());
        c.count_login("failed");
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong name or secret".into(),
        ));
    };
    c.count_login("ok");
    let cookie = c.sessions.issue(&who, Console::now_ms());
    let ttl_s = (c.sessions_ttl_ms() / 1000).max(1);
    Ok((
        [(header::SET_COOKIE, set_cookie(&cookie, ttl_s))],
        Json(me_body(&c, &who, &cookie)),
    )
        .into_response())
}

impl Console {
    fn sessions_ttl_ms(&self) -> u64 {
        self.sessions.ttl_ms()
    }
}

async fn me(State(c): State<Arc<Console>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let k = caller(&c, &headers)?;
    let cookie = k.cookie.unwrap_or_default();
    Ok(Json(me_body(&c, &k.who, &cookie)))
}

async fn logout() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, set_cookie("", 0))],
    )
        .into_response()
}

async fn alerts(State(c): State<Arc<Console>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let k = caller(&c, &headers)?;
    operator(&k)?;
    let p = c.picture.read().map_err(|_| bad("poisoned"))?;
    Ok(Json(Value::Array(p.open_alerts())))
}

async fn units(State(c): State<Arc<Console>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let k = caller(&c, &headers)?;
    operator(&k)?;
    let p = c.picture.read().map_err(|_| bad("poisoned"))?;
    Ok(Json(serde_json::to_value(p.units()).unwrap_or_default()))
}

async fn stations(State(c): State<Arc<Console>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let k = caller(&c, &headers)?;
    operator(&k)?;
    let p = c.picture.read().map_err(|_| bad("poisoned"))?;
    Ok(Json(Value::Array(p.stations())))
}

async fn roads(State(c): State<Arc<Console>>, headers: HeaderMap) -> ApiResult<Response> {
    caller(&c, &headers)?;
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        c.roads_geojson.clone(),
    )
        .into_response())
}

async fn candidates(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let k = caller(&c, &headers)?;
    operator(&k)?;
    let alert_id = q
        .get("alert_id")
        .ok_or_else(|| bad("alert_id is missing"))?;
    let p = c.picture.read().map_err(|_| bad("poisoned"))?;
    let doc = p.latest(alert_id).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("alert_id {alert_id:?} is not open"),
        )
    })?;
    let target = place_of_alert(&doc.value);
    let mut out: Vec<(f64, Value)> = p
        .units()
        .into_iter()
        .filter(|u| u.status != "off_duty")
        .filter_map(|u| {
            let target = target.as_ref()?;
            let from = place_of(&c.network, u.lon, u.lat);
            let r = route(&c.network, &c.dispatch, &from, target);
            let eta_s = r.metres / c.dispatch.speed_mps;
            Some((
                eta_s,
                json!({"unit_id":u.unit_id,"status":u.status,"eta_s":eta_s.round() as i64,
                       "route_m":r.metres.round() as i64,"alert_id":u.alert_id}),
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(Json(Value::Array(
        out.into_iter().map(|(_, v)| v).collect(),
    )))
}

fn place_of(net: &RoadNetwork, lon: f64, lat: f64) -> Place {
    Place {
        lon,
        lat,
        road: net.locate(lon, lat, EventTime::from_ms(0)).map(|p| OnRoad {
            road_id: p.road_id,
            direction: p.direction,
            stake_m: p.stake_m,
        }),
    }
}

fn place_of_alert(doc: &Value) -> Option<Place> {
    let loc = doc.get("location")?;
    let (lon, lat) = (loc.get("lon")?.as_f64()?, loc.get("lat")?.as_f64()?);
    let road = match (
        loc.get("road_id").and_then(Value::as_str),
        loc.get("direction").and_then(Value::as_str),
        loc.get("stake_m").and_then(Value::as_f64),
    ) {
        (Some(r), Some(d), Some(s)) => {
            crate::core::roads::Direction::parse(d).map(|direction| OnRoad {
                road_id: r.into(),
                direction,
                stake_m: s,
            })
        }
        _ => None,
    };
    Some(Place { lon, lat, road })
}

/// Checks a record the way the engine will (the same decoder), so that what the engine
/// would dead-letter is refused here with its reason instead.
fn checked(stream: InputStream, value: &Value) -> ApiResult<()> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    decode_record(stream, &bytes, &DecodeContext::without_clock())
        .map(|_| ())
        .map_err(|r| bad(r.detail))
}

async fn deliver(c: &Console, stream: InputStream, key: String, value: Value) -> ApiResult<()> {
    c.outbox.send(stream, key, value).await.map_err(|e| {
        tracing::warn!(error = %e, "the console could not deliver a record");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not delivered: {e}"),
        )
    })
}

fn new_id(prefix: &str) -> String {
    let r = super::auth::new_secret();
    let r: String = r
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(10)
        .collect();
    format!("{prefix}-{}-{r}", Console::now_ms())
}

async fn actions(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let k = poster(&c, &headers)?;
    let operator_id = operator(&k)?.to_owned();
    let mut m = json_body(&body)?;
    for server_side in ["action_id", "operator_id", "ts"] {
        if m.contains_key(server_side) {
            return Err(bad(format!(
                "{server_side} is set by the server; leave it out"
            )));
        }
    }
    let alert_id = m
        .get("alert_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("alert_id is missing"))?
        .to_owned();
    let action_id = new_id("web");
    m.insert("action_id".into(), json!(action_id));
    m.insert("operator_id".into(), json!(operator_id));
    m.insert("ts".into(), json!(Console::now_ms()));
    let value = Value::Object(m);
    checked(InputStream::Operator, &value)?;
    let open = c
        .picture
        .read()
        .map(|p| p.latest(&alert_id).is_some_and(|d| !d.closed))
        .unwrap_or(false);
    if !open {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("alert_id {alert_id:?} is not open"),
        ));
    }
    deliver(&c, InputStream::Operator, alert_id, value).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "action_id": action_id })),
    ))
}

/// A unit's record from its POST: the unit from the credential (a `unit_id` naming
/// another is refused), stamped now, and checked by the engine's decoder.
fn unit_record(
    c: &Console,
    headers: &HeaderMap,
    body: &Bytes,
    stream: InputStream,
) -> ApiResult<(String, Value)> {
    let k = poster(c, headers)?;
    let unit_id = unit(&k)?.to_owned();
    let mut m = json_body(body)?;
    if m.get("unit_id")
        .is_some_and(|u| u.as_str() != Some(&unit_id))
    {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "unit_id is not yours".into(),
        ));
    }
    m.insert("unit_id".into(), json!(unit_id));
    m.insert("ts".into(), json!(Console::now_ms()));
    let value = Value::Object(m);
    checked(stream, &value)?;
    Ok((unit_id, value))
}

async fn unit_ack(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let (unit_id, value) = unit_record(&c, &headers, &body, InputStream::Ack)?;
    let alert_id = value["alert_id"].as_str().unwrap_or_default().to_owned();
    let mine = c
        .picture
        .read()
        .map(|p| p.addressed_to(&alert_id, &unit_id))
        .unwrap_or(false);
    if !mine {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("alert_id {alert_id:?} is not assigned to {unit_id}"),
        ));
    }
    deliver(&c, InputStream::Ack, unit_id, value).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn unit_position(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let (unit_id, value) = unit_record(&c, &headers, &body, InputStream::Patrol)?;
    deliver(&c, InputStream::Patrol, unit_id, value).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn unit_dispatches(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let k = caller(&c, &headers)?;
    let unit_id = unit(&k)?;
    let p = c.picture.read().map_err(|_| bad("poisoned"))?;
    let (current, earlier) = p.dispatches_of(unit_id);
    Ok(Json(json!({"current": current, "earlier": earlier})))
}

/// Counts a connected page for as long as its event stream lives.
struct StreamGuard(Option<Arc<Metrics>>);

impl StreamGuard {
    fn new(m: Option<Arc<Metrics>>) -> StreamGuard {
        if let Some(m) = &m {
            m.console_event_streams.inc();
        }
        StreamGuard(m)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(m) = &self.0 {
            m.console_event_streams.dec();
        }
    }
}

fn alert_event(d: &Doc) -> SseEvent {
    SseEvent::default()
        .event(match d.kind {
            DocKind::Alert => "alert",
            DocKind::Ack => "ack",
        })
        .id(d.cursor.encode())
        .data(d.value.to_string())
}

fn station_event(v: &Value) -> SseEvent {
    SseEvent::default().event("station").data(v.to_string())
}

fn unit_event(u: &UnitState) -> SseEvent {
    SseEvent::default()
        .event("unit")
        .data(serde_json::to_string(u).unwrap_or_default())
}

async fn events(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let k = caller(&c, &headers)?;
    let only_unit: Option<String> = match &k.who {
        Principal::Unit(u) => Some(u.clone()),
        Principal::Operator(_) => None,
    };
    let resume = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(text) => {
            Some(Cursor::decode(text).ok_or_else(|| bad("Last-Event-ID is not one of ours"))?)
        }
        None => None,
    };
    // Subscribed before the catch-up is read: nothing falls between the two; what is in
    // both is sent once (the live part skips what the catch-up covered).
    let live = c.events.subscribe();
    let (backlog, seen, unit_states, stations) = {
        let p = c.picture.read().map_err(|_| bad("poisoned"))?;
        let backlog = p.catch_up(resume.as_ref(), only_unit.as_deref());
        let units: Vec<UnitState> = match &only_unit {
            None => p.units(),
            Some(u) => p.unit(u).cloned().into_iter().collect(),
        };
        let stations = if only_unit.is_none() {
            p.stations()
        } else {
            Vec::new()
        };
        (backlog, p.cursor().clone(), units, stations)
    };
    let first: Vec<Result<SseEvent, Infallible>> = backlog
        .iter()
        .map(alert_event)
        .chain(unit_states.iter().map(unit_event))
        .chain(stations.iter().map(station_event))
        .chain(std::iter::once(
            SseEvent::default().event("ready").data("{}"),
        ))
        .map(Ok)
        .collect();
    let guard = StreamGuard::new(c.metrics.clone());
    let live = stream::unfold(
        (live, seen, only_unit, guard),
        |(mut rx, mut seen, only, guard)| async move {
            loop {
                match rx.recv().await {
                    Ok(Event::Alert(d)) => {
                        if !seen.before(d.pos) {
                            continue;
                        }
                        seen.advance(d.pos);
                        if only.as_deref().is_some_and(|u| !d.for_unit(u)) {
                            continue;
                        }
                        return Some((Ok(alert_event(&d)), (rx, seen, only, guard)));
                    }
                    Ok(Event::Unit(u)) => {
                        if only.as_deref().is_some_and(|o| o != u.unit_id) {
                            continue;
                        }
                        return Some((Ok(unit_event(&u)), (rx, seen, only, guard)));
                    }
                    Ok(Event::Station(v)) => {
                        if only.is_some() {
                            continue;
                        }
                        return Some((Ok(station_event(&v)), (rx, seen, only, guard)));
                    }
                    // Too slow to keep up: end the stream; the page reconnects with its
                    // Last-Event-ID and catches up from the log.
                    Err(broadcast::error::RecvError::Lagged(_))
                    | Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream::iter(first).chain(live))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn page_console() -> Response {
    assets::page("console/index.html")
}

async fn page_unit() -> Response {
    assets::page("unit/index.html")
}

pub fn router(c: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(page_console))
        .route("/unit", get(page_unit))
        .route("/static/{*path}", get(assets::file))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/alerts", get(alerts))
        .route("/api/units", get(units))
        .route("/api/stations", get(stations))
        .route("/api/roads", get(roads))
        .route("/api/candidates", get(candidates))
        .route("/api/events", get(events))
        .route("/api/actions", post(actions))
        .route("/api/unit/ack", post(unit_ack))
        .route("/api/unit/position", post(unit_position))
        .route("/api/unit/dispatches", get(unit_dispatches))
        .with_state(c)
}

/// Binds `listen` (a bad address fails start-up, naming the key) and serves until the
/// process ends. Returns the bound address (port 0 picks a free one).
pub async fn serve(listen: SocketAddr, c: Arc<Console>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the console on {listen} (console.listen)"))?;
    let addr = listener.local_addr()?;
    let app = router(c).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "console listener stopped");
        }
    });
    Ok(addr)
}
