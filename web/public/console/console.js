// The command-center console (served at /). Talks to the API of docs/CONSOLE.md:
// session via /api/login and /api/me, the live picture via EventSource('/api/events'),
// operator actions via POST /api/actions. No framework: the state below is rendered
// into the DOM by the render* functions, batched by scheduleRender().

import { t, label, lang, applyI18n, toggleLang, onLangChange } from '/static/common/i18n.js';
import { api, setCsrf } from '/static/common/api.js';
import { Alarm } from '/static/common/alarm.js';
import {
  h, clear, severityRank, SEVERITIES, tsMillis, fmtTime, fmtAge, fmtEta, fmtDistance, fmtStake, fmtPercent,
} from '/static/common/util.js';

// Leaflet puts a string tooltip in as HTML; summaries and names come from devices and
// files, so every tooltip is a text node.
function asText(text) {
  return h('span', null, String(text));
}

const L = window.L;
const $ = (id) => document.getElementById(id);

const KINDS = ['pedestrian', 'illegal_ride_hailing', 'severe_weather'];
const OUTCOMES = ['confirmed', 'false_alarm', 'not_found', 'duplicate'];
const NOTE_MAX = 500;
const CLOSED_KEEP = 30;
const PENDING_ACKS_KEEP = 200; // alerts whose answers came before any of their documents
const ACKS_PER_ALERT = 100;
const STATIONS_MAX = 2000;                 // weather stations kept (the server sends each one's latest)
const STATION_STALE_MS = 30 * 60 * 1000;   // a station silent this long is drawn faded (weather.silent_after_s)

// Colours by severity (info < warning < severe < critical); the CSS uses the same ones.
const SEV_COLOR = { info: '#4f8ff7', warning: '#f5b82e', severe: '#fb7a2c', critical: '#f04352' };

const state = {
  session: null,
  es: null,                 // the EventSource
  esFresh: false,           // true until the first `ready` of a newly created EventSource
  pictureIds: new Set(),    // alert ids sent before that first `ready`
  reconnectDelay: 2000,
  reconnectTimer: null,
  conn: 'connecting',
  // alert_id → {id, docs: [document, …] oldest first, keys: Set of JSON texts (dedup),
  //             acks: [the units' answers (dispatch-acks), oldest first], ackKeys: Set (dedup),
  //             localAckAt?: docs.length when this console acknowledged it, lost?: bool}
  alerts: new Map(),
  pendingAcks: new Map(),   // alert_id → answers that came before any document of the alert
  closed: [],               // recently closed entries, newest first
  units: new Map(),         // unit_id → unit state
  stations: new Map(),      // station_id → its latest observation (weather-observations, checked)
  stationInfo: new Map(),   // station_id → {name, name_en, road_id, stake} from the road network
  selected: null,           // alert_id shown in the detail panel
  filters: { kind: '', severity: '', road: '' },
  roads: null,              // the GeoJSON of GET /api/roads
  roadIds: [],
  roadIndex: new Map(),     // road_id → [{direction, s0, s1, pts, cum, len}] carriageways with stakes
  dirtyAlerts: new Set(),   // alerts whose map layers must be redrawn
  renderTimer: null,
  candidatesFor: null,      // alert id whose candidate list is shown
  ackPending: new Set(),
  // The last action sent and not yet seen in a document: {alertId, from, confirmedBy}.
  pendingAction: null,
};

const alarm = new Alarm({ intervalMs: 3000 });

const map = {
  m: null,
  roads: null,
  labels: null,
  alertLayers: new Map(),  // alert_id → L.LayerGroup (marker + stretch)
  unitLayers: new Map(),   // unit_id → {marker, link}
  stationLayers: new Map(), // station_id → {marker, sig, tip}
  legend: null,
};

// ───────────────────────── session ─────────────────────────

async function boot() {
  applyI18n(document);
  wireStaticControls();
  try {
    const me = await api.get('/api/me');
    if (me && me.role === 'operator') {
      startSession(me);
      return;
    }
  } catch { /* no session: sign in */ }
  showLogin();
}

function showLogin(message) {
  $('app').hidden = true;
  $('login').hidden = false;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('login-submit').disabled = false;
  $('login-submit').textContent = t('login.submit');
  $('login-user').focus();
}

async function onLoginSubmit(ev) {
  ev.preventDefault();
  const user = $('login-user').value.trim();
  const password = $('login-password').value;
  const btn = $('login-submit');
  btn.disabled = true;
  btn.textContent = t('login.busy');
  $('login-error').hidden = true;
  try {
    const me = await api.post('/api/login', { user, password });
    if (!me || me.role !== 'operator') throw Object.assign(new Error(t('login.bad')), { status: 401 });
    $('login-password').value = '';
    alarm.unlock(); // the click that signed in is the gesture that allows sound
    startSession(me);
  } catch (e) {
    const msg = e.status === 401 ? t('login.bad') : e.status === 429 ? t('login.throttled') : t('login.failed', { msg: e.message });
    showLogin(msg);
  }
}

function startSession(me) {
  state.session = me;
  setCsrf(me.csrf);
  $('login').hidden = true;
  $('app').hidden = false;
  $('operator').textContent = me.operator_id || '';
  initMap();
  loadRoads();
  connect();
  loadStations();
  scheduleRender();
}

async function logout() {
  try { await api.post('/api/logout'); } catch { /* the session ends here anyway */ }
  endSession();
  showLogin();
}

/** Forget everything of the session (logout, or the server said 401). */
function endSession() {
  if (state.es) state.es.close();
  state.es = null;
  clearTimeout(state.reconnectTimer);
  alarm.stop();
  setCsrf(null);
  state.session = null;
  state.alerts.clear();
  state.closed = [];
  state.pendingAcks.clear();
  state.units.clear();
  state.stations.clear();
  state.selected = null;
  state.ackPending.clear();
  state.pendingAction = null;
  if (map.m) {
    for (const g of map.alertLayers.values()) g.remove();
    for (const u of map.unitLayers.values()) { u.marker.remove(); if (u.link) u.link.remove(); }
    for (const r of map.stationLayers.values()) r.marker.remove();
  }
  map.alertLayers.clear();
  map.unitLayers.clear();
  map.stationLayers.clear();
  renderAll();
}

async function sessionLost() {
  endSession();
  showLogin();
}

// ───────────────────────── live events ─────────────────────────

function connect() {
  clearTimeout(state.reconnectTimer);
  if (state.es) state.es.close();
  const es = new EventSource('/api/events');
  state.es = es;
  state.esFresh = true;
  state.pictureIds = new Set();
  setConn('connecting');

  es.onopen = () => {
    state.reconnectDelay = 2000;
    setConn('live');
  };
  es.onerror = () => {
    if (es !== state.es) return;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (an HTTP error such as 401): check the session, then retry.
      setConn('offline');
      retryLater();
    } else {
      setConn('reconnecting'); // the browser retries by itself, with Last-Event-ID
    }
  };
  es.addEventListener('alert', (e) => {
    const doc = parseData(e);
    if (doc) onAlertDoc(doc, es);
  });
  es.addEventListener('unit', (e) => {
    const u = parseData(e);
    if (u) onUnit(u);
  });
  es.addEventListener('ack', (e) => {
    // A unit's answer: never let a malformed one break the page.
    try {
      const a = parseData(e);
      if (a) onAck(a);
    } catch (err) {
      console.warn('ack event not shown:', err && err.message);
    }
  });
  es.addEventListener('station', (e) => {
    // A weather station's latest observation: a malformed one is left out, never fatal.
    try {
      const o = parseData(e);
      if (o) onStation(o);
    } catch (err) {
      console.warn('station event not shown:', err && err.message);
    }
  });
  es.addEventListener('ready', () => onReady(es));
}

function parseData(e) {
  try { return JSON.parse(e.data); } catch { return null; }
}

function retryLater() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(async () => {
    try {
      await api.get('/api/me');
    } catch (e) {
      if (e.status === 401) { sessionLost(); return; }
    }
    state.reconnectDelay = Math.min(state.reconnectDelay * 2, 30000);
    if (state.session) connect();
  }, state.reconnectDelay);
}

function setConn(s) {
  state.conn = s;
  const el = $('connection');
  el.dataset.state = s;
  el.className = `conn conn-${s}`;
  $('connection-text').textContent = t(`conn.${s}`);
}

function onAlertDoc(doc, es) {
  if (!doc || typeof doc.alert_id !== 'string') return;
  const id = doc.alert_id;
  if (es === state.es && state.esFresh) state.pictureIds.add(id);
  // GET /api/alerts adds `history` and `acks`; an event never should, but do not keep
  // them in the document (the answers are kept beside the documents).
  let withAcks = null;
  if ('history' in doc || 'acks' in doc) {
    withAcks = Array.isArray(doc.acks) ? doc.acks : null;
    doc = { ...doc };
    delete doc.history;
    delete doc.acks;
  }

  let entry = state.alerts.get(id);
  if (!entry) {
    const i = state.closed.findIndex((c) => c.id === id);
    if (i >= 0) entry = state.closed.splice(i, 1)[0];
  }
  if (!entry) {
    entry = { id, docs: [], keys: new Set(), acks: [], ackKeys: new Set() };
    // Answers that came before the alert's first document join it now.
    const early = state.pendingAcks.get(id);
    state.pendingAcks.delete(id);
    for (const a of early || []) addAck(entry, a);
  }
  for (const a of withAcks || []) if (validAck(a) && a.alert_id === id) addAck(entry, a);

  // A fresh connection re-sends every document of every open alert: skip those we have.
  const key = JSON.stringify(doc);
  if (!entry.keys.has(key)) {
    entry.keys.add(key);
    entry.docs.push(doc);
    entry.lost = false;
  }
  if (latest(entry).status === 'cleared') {
    state.alerts.delete(id);
    addClosed(entry);
    state.ackPending.delete(id);
  } else {
    state.alerts.set(id, entry);
  }
  if (latest(entry).acknowledged_by) state.ackPending.delete(id);
  const p = state.pendingAction;
  if (p && p.alertId === id && actionConfirmed(p)) {
    // What the action asked for is in a document now: no longer "waiting".
    state.pendingAction = null;
    if (state.selected === id) showActionStatus(null);
  }
  state.dirtyAlerts.add(id);
  scheduleRender();
}

function addClosed(entry) {
  entry.closedAt = Date.now();
  state.closed = [entry, ...state.closed.filter((c) => c.id !== entry.id)].slice(0, CLOSED_KEEP);
}

function validAck(a) {
  return !!a && typeof a === 'object' && typeof a.alert_id === 'string' && a.alert_id !== ''
    && typeof a.unit_id === 'string' && typeof a.status === 'string';
}

/** What tells two copies of one answer apart from two answers (a replay re-sends them). */
function ackKey(a) {
  const ms = tsMillis(a.ts);
  return JSON.stringify([a.unit_id, a.status, Number.isNaN(ms) ? String(a.ts) : ms, a.outcome ?? null]);
}

function ackMillis(a) {
  const ms = tsMillis(a.ts);
  return Number.isNaN(ms) ? Infinity : ms;
}

/** Keep an answer with its alert, in time order (an answer without a time goes last). */
function addAck(entry, a) {
  const key = ackKey(a);
  if (entry.ackKeys.has(key)) return false;
  entry.ackKeys.add(key);
  const ms = ackMillis(a);
  let i = entry.acks.length;
  while (i > 0 && ackMillis(entry.acks[i - 1]) > ms) i -= 1;
  entry.acks.splice(i, 0, a);
  if (entry.acks.length > ACKS_PER_ALERT) {
    const gone = entry.acks.shift();
    entry.ackKeys.delete(ackKey(gone));
  }
  return true;
}

/** An `ack` event: a unit's answer to a dispatch (docs/CONSOLE.md, "Live events"). */
function onAck(a) {
  if (!validAck(a)) return;
  const entry = findEntry(a.alert_id);
  if (entry) {
    if (addAck(entry, a) && state.selected === entry.id) scheduleRender();
    return;
  }
  // Its alert is not known (yet): keep the answer until the alert's document comes.
  const id = a.alert_id;
  const list = state.pendingAcks.get(id) || [];
  const key = ackKey(a);
  if (list.some((x) => ackKey(x) === key)) return;
  list.push(a);
  if (list.length > ACKS_PER_ALERT) list.shift();
  state.pendingAcks.delete(id); // re-insert: the Map's order is the order of arrival
  state.pendingAcks.set(id, list);
  while (state.pendingAcks.size > PENDING_ACKS_KEEP) state.pendingAcks.delete(state.pendingAcks.keys().next().value);
}

// ───────────────────────── weather stations ─────────────────────────

/** A measurement as a finite number, or null (not measured, or not a number). */
function measure(x) {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

/**
 * A weather station's observation as on `weather-observations` (CONTRACT: every
 * measurement optional, null = not measured), checked and copied; null when it cannot be
 * placed on the map.
 */
function validStation(o) {
  if (!o || typeof o !== 'object' || Array.isArray(o)) return null;
  const id = o.station_id;
  if (typeof id !== 'string' || !id || id.length > 200) return null;
  const lon = measure(o.lon);
  const lat = measure(o.lat);
  if (lon === null || lat === null || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  const state_ = typeof o.road_surface_state === 'string' && o.road_surface_state && o.road_surface_state.length <= 40
    ? o.road_surface_state : null;
  return {
    event_id: typeof o.event_id === 'string' ? o.event_id : null,
    station_id: id,
    ts: typeof o.ts === 'string' || typeof o.ts === 'number' ? o.ts : null,
    lon,
    lat,
    visibility_m: measure(o.visibility_m),
    precipitation_mm_h: measure(o.precipitation_mm_h),
    wind_speed_ms: measure(o.wind_speed_ms),
    wind_gust_ms: measure(o.wind_gust_ms),
    road_surface_temp_c: measure(o.road_surface_temp_c),
    road_surface_state: state_,
    air_temp_c: measure(o.air_temp_c),
  };
}

/** A `station` event or an element of GET /api/stations: the station's latest by `ts` is kept. */
function onStation(o) {
  const s = validStation(o);
  if (!s) return;
  const old = state.stations.get(s.station_id);
  if (old) {
    const a = tsMillis(old.ts);
    const b = tsMillis(s.ts);
    if (!Number.isNaN(a) && (Number.isNaN(b) || b < a)) return; // older (or timeless) than what is shown
  } else if (state.stations.size >= STATIONS_MAX) {
    return;
  }
  state.stations.set(s.station_id, s);
  scheduleRender();
}

/** GET /api/stations: the same observations as the events bring; whichever is newer stays. */
async function loadStations() {
  let list;
  try {
    list = await api.get('/api/stations');
  } catch (e) {
    if (e.status !== 401) console.warn('stations not loaded:', e.message);
    return; // a lost session shows on the event stream
  }
  if (!state.session || !Array.isArray(list)) return;
  for (const o of list) {
    try { onStation(o); } catch (err) { console.warn('station not shown:', err && err.message); }
  }
}

/** Whether a station has been silent too long (an observation without a time is not judged). */
function stationStale(s) {
  const ms = tsMillis(s.ts);
  return !Number.isNaN(ms) && Date.now() - ms > STATION_STALE_MS;
}

/** Open severe-weather alerts shown (filters apply) per station_id, most severe first. */
function alertsByStation() {
  const by = new Map();
  for (const entry of state.alerts.values()) {
    const d = latest(entry);
    if (d.kind !== 'severe_weather' || !matchesFilters(entry)) continue;
    const sid = d.details && d.details.station_id;
    if (typeof sid !== 'string' || !sid) continue;
    if (!by.has(sid)) by.set(sid, []);
    by.get(sid).push(entry);
  }
  for (const list of by.values()) list.sort(compareAlerts);
  return by;
}

function fixed(x, digits) {
  return x === null ? null : x.toFixed(digits);
}

/** [label, value text or null (not measured)] of one observation. */
function stationReadings(s) {
  const surface = [];
  if (s.road_surface_temp_c !== null) surface.push(`${fixed(s.road_surface_temp_c, 1)} °C`);
  if (s.road_surface_state !== null) surface.push(label('surface', s.road_surface_state));
  return [
    [t('station.visibility'), s.visibility_m === null ? null : t('m', { n: Math.round(s.visibility_m) })],
    [t('station.rain'), s.precipitation_mm_h === null ? null : `${fixed(s.precipitation_mm_h, 1)} mm/h`],
    [t('station.wind'), s.wind_speed_ms === null ? null : `${fixed(s.wind_speed_ms, 1)} m/s`],
    [t('station.gust'), s.wind_gust_ms === null ? null : `${fixed(s.wind_gust_ms, 1)} m/s`],
    [t('station.surface'), surface.length ? surface.join(' · ') : null],
    [t('station.air'), s.air_temp_c === null ? null : `${fixed(s.air_temp_c, 1)} °C`],
  ];
}

function stationName(id) {
  const info = state.stationInfo.get(id);
  if (!info) return '';
  return (lang() === 'en' && info.name_en) || info.name || '';
}

/** The tooltip of a station's marker, built when it opens (text only, never HTML). */
function stationTooltip(id) {
  const s = state.stations.get(id);
  if (!s) return h('div', null, id);
  const info = state.stationInfo.get(id);
  const name = stationName(id);
  const kv = h('dl', { class: 'st-kv' });
  for (const [k, v] of stationReadings(s)) {
    kv.append(h('dt', null, k), h('dd', v === null ? { class: 'muted' } : null, v === null ? t('station.not_measured') : v));
  }
  kv.append(h('dt', null, t('station.time')), h('dd', null, `${fmtTime(s.ts)}${Number.isNaN(tsMillis(s.ts)) ? '' : ` (${fmtAge(s.ts)})`}`));
  const alerts = alertsByStation().get(id) || [];
  return h('div', { class: 'st-tip', testid: 'station-tooltip', dataset: { stationId: id } },
    h('div', { class: 'st-head' },
      h('b', null, name || t('station.title', { id })),
      name ? h('span', { class: 'mono muted' }, ` ${id}`) : null),
    info && (info.road_id || info.stake) ? h('div', { class: 'muted' }, [info.road_id, info.stake].filter(Boolean).join(' ')) : null,
    kv,
    stationStale(s) ? h('div', { class: 'st-stale' }, t('station.stale', { n: Math.round(STATION_STALE_MS / 60000) })) : null,
    alerts.map((e) => h('div', { class: `st-alert sev-${latest(e).severity}` },
      t('station.alert', { summary: latest(e).summary || e.id }))));
}

/** One line of a station's readings (the detail of its weather alert). */
function stationLine(s) {
  const parts = stationReadings(s).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${v}`);
  parts.push(fmtTime(s.ts));
  return parts.join(' · ');
}

// A weather alert's marker stands on its station (DISPATCH.md: the station's position on
// the road): the station of an open alert is drawn beside it, lower right, not under it.
const STATION_BESIDE = [17, 15];

function stationIcon(cls, beside) {
  const [dx, dy] = beside ? STATION_BESIDE : [0, 0];
  return L.divIcon({
    className: cls,
    html: '<span class="rw-station-dot"></span>',
    iconSize: [16, 16],
    iconAnchor: [8 - dx, 8 - dy],
    tooltipAnchor: [dx + 9, dy], // beside the diamond (the tooltip opens left or right of it)
  });
}

/** Tag a station marker's element (Leaflet makes a new one for every icon). */
function tagStation(marker, id) {
  const el = marker.getElement();
  if (!el) return;
  el.dataset.testid = 'station-marker';
  el.dataset.stationId = id;
}

/** One marker per station: faded when silent, ringed in the colour of its open weather alert. */
function syncStations(refreshTips = false) {
  if (!map.m) return;
  for (const [id, rec] of map.stationLayers) {
    if (!state.stations.has(id)) { rec.marker.remove(); map.stationLayers.delete(id); }
  }
  const byStation = alertsByStation();
  for (const [id, s] of state.stations) {
    const alerts = byStation.get(id) || [];
    const top = alerts[0] ? latest(alerts[0]) : null;
    const cls = ['rw-station'];
    if (top) cls.push('alerting', `sev-${top.severity}`);
    if (alerts.some((e) => e.id === state.selected)) cls.push('selected');
    if (stationStale(s)) cls.push('stale');
    const className = cls.join(' ');
    const ll = L.latLng(s.lat, s.lon);
    let rec = map.stationLayers.get(id);
    if (!rec) {
      const marker = L.marker(ll, { icon: stationIcon(className, !!top), keyboard: false, zIndexOffset: 100, riseOnHover: true });
      // Beside, not above: it is tall, and a station may sit near the map's edge.
      marker.bindTooltip(() => stationTooltip(id), { direction: 'auto', className: 'rw-tooltip' });
      marker.on('add', () => tagStation(marker, id));
      // Clicking a station opens its most severe open weather alert (looked up at click time).
      marker.on('click', () => {
        const list = alertsByStation().get(id);
        if (list && list.length) selectAlert(list[0].id);
      });
      rec = { marker, className, obs: s, tip: '' };
      map.stationLayers.set(id, rec);
      marker.addTo(map.m);
    }
    if (rec.obs !== s) {
      if (rec.obs.lat !== s.lat || rec.obs.lon !== s.lon) rec.marker.setLatLng(ll);
      rec.obs = s;
    }
    if (rec.className !== className) {
      rec.marker.setIcon(stationIcon(className, !!top));
      rec.className = className;
      tagStation(rec.marker, id); // a new icon is a new element
    }
    // An open tooltip follows a new reading, a change of its alerts, or the language.
    const tt = rec.marker.getTooltip();
    if (tt && tt.isOpen()) {
      const tip = JSON.stringify([s, alerts.map((e) => [e.id, latest(e).severity, latest(e).summary]), lang()]);
      if (refreshTips || rec.tip !== tip) tt.update();
      rec.tip = tip;
    }
  }
}

function onUnit(u) {
  if (!u || typeof u.unit_id !== 'string') return;
  state.units.set(u.unit_id, u);
  scheduleRender();
}

function onReady(es) {
  if (es !== state.es) return;
  if (state.esFresh) {
    // A new connection's picture holds every open alert: those we still show as open but
    // that are not in it ended while we were away (their `cleared` was not replayed).
    for (const [id, entry] of [...state.alerts]) {
      if (!state.pictureIds.has(id)) {
        state.alerts.delete(id);
        entry.lost = true;
        addClosed(entry);
        state.dirtyAlerts.add(id);
      }
    }
    state.esFresh = false;
  }
  setConn('live');
  scheduleRender();
}

// ───────────────────────── derived facts ─────────────────────────

function latest(entry) {
  return entry.docs[entry.docs.length - 1];
}

function startedMs(entry) {
  const ms = tsMillis(entry.docs[0].event_ts);
  return Number.isNaN(ms) ? Infinity : ms;
}

/**
 * The alert's lifecycle status: the latest status other than `update`. An acknowledgement
 * or a note comes as an `update`, and an escalated alert stays escalated through them
 * until a unit is assigned (`redispatch`) or it ends.
 */
function lifecycleStatus(entry) {
  for (let i = entry.docs.length - 1; i >= 0; i--) {
    if (entry.docs[i].status !== 'update') return entry.docs[i].status;
  }
  return 'update';
}

/**
 * Index of the first `escalated` document of the current escalation, or -1 when the
 * alert is not escalated. `update`s in between (acknowledgements, notes) do not end it.
 */
function escalationStart(entry) {
  const docs = entry.docs;
  let start = -1;
  for (let i = docs.length - 1; i >= 0; i--) {
    const st = docs[i].status;
    if (st === 'escalated') start = i;
    else if (st !== 'update') break;
  }
  return start;
}

function isEscalated(entry) {
  return escalationStart(entry) >= 0;
}

/**
 * Whether this alert calls for the alarm: it is critical or escalated, and nobody has
 * acknowledged it since it became so. An acknowledgement given before an escalation does
 * not cover the escalation (the platform then found no unit: someone must act again).
 */
function needsAttention(entry) {
  const docs = entry.docs;
  const last = latest(entry);
  // Index of the document that started what calls for attention (-1: the alert's start).
  const trigger = escalationStart(entry);
  if (trigger < 0 && last.severity !== 'critical') return false;
  if (entry.localAckAt !== undefined && entry.localAckAt > trigger) return false;
  if (!last.acknowledged_by) return true;
  // The first document carrying the current acknowledgement.
  const ackKey = JSON.stringify(last.acknowledged_by);
  const ackAt = docs.findIndex((d) => d.acknowledged_by && JSON.stringify(d.acknowledged_by) === ackKey);
  return ackAt < trigger;
}

function isAcknowledged(entry) {
  return !!latest(entry).acknowledged_by && !needsAttention(entry);
}

function compareAlerts(a, b) {
  const sa = severityRank(latest(a).severity);
  const sb = severityRank(latest(b).severity);
  if (sa !== sb) return sb - sa;
  const ta = startedMs(a);
  const tb = startedMs(b);
  if (ta !== tb) return ta - tb;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function matchesFilters(entry) {
  const d = latest(entry);
  const f = state.filters;
  if (f.kind && d.kind !== f.kind) return false;
  if (f.severity && d.severity !== f.severity) return false;
  if (f.road && (!d.location || d.location.road_id !== f.road)) return false;
  return true;
}

function glyph(doc) {
  if (doc.kind === 'severe_weather' && doc.subtype) {
    const g = t(`glyph.${doc.subtype}`);
    if (g !== `glyph.${doc.subtype}`) return g;
  }
  return label('glyph', doc.kind).slice(0, 2);
}

function placeText(loc) {
  if (!loc) return '—';
  const parts = [];
  if (loc.road_id) parts.push(loc.road_id);
  if (loc.road_name) parts.push(loc.road_name);
  if (loc.direction) parts.push(label('direction', loc.direction));
  if (loc.stake) parts.push(loc.stake);
  else if (typeof loc.stake_m === 'number') parts.push(fmtStake(loc.stake_m));
  if (!parts.length && typeof loc.lon === 'number') parts.push(`${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}`);
  if (loc.structure) parts.push(`· ${label('structure', loc.structure)}`);
  return parts.join(' ');
}

function locLatLng(doc) {
  const loc = doc && doc.location;
  if (!loc || typeof loc.lat !== 'number' || typeof loc.lon !== 'number') return null;
  return L.latLng(loc.lat, loc.lon);
}

// ───────────────────────── rendering ─────────────────────────

function scheduleRender() {
  // A timer, not requestAnimationFrame: a console in a background tab must still ring.
  if (state.renderTimer) return;
  state.renderTimer = setTimeout(() => {
    state.renderTimer = null;
    renderAll();
  }, 40);
}

function renderAll() {
  renderCounts();
  renderFilters();
  renderQueue();
  renderClosed();
  syncMap();
  renderDetail();
  updateAlarm();
}

function renderCounts() {
  const open = [...state.alerts.values()];
  $('count-open').textContent = open.length;
  $('count-unack').textContent = open.filter((e) => !latest(e).acknowledged_by).length;
  $('count-escalated').textContent = open.filter(isEscalated).length;
  let a = 0;
  let b = 0;
  for (const u of state.units.values()) {
    if (u.status === 'available') a += 1;
    else if (u.status === 'busy') b += 1;
  }
  $('count-units').textContent = t('count.units', { a, b });
  document.querySelector('.counter-unack').classList.toggle('hot', open.some((e) => !latest(e).acknowledged_by));
  document.querySelector('.counter-escalated').classList.toggle('hot', open.some(isEscalated));
}

function fillSelect(sel, options, value) {
  // options: [[value, text], …]; rebuilt only when they changed, so an open menu survives.
  const sig = JSON.stringify(options);
  if (sel.dataset.sig !== sig) {
    clear(sel);
    for (const [v, text] of options) sel.append(h('option', { value: v }, text));
    sel.dataset.sig = sig;
  }
  sel.value = value;
}

function renderFilters() {
  const all = [['', t('filter.all')]];
  fillSelect($('filter-kind'), all.concat(KINDS.map((k) => [k, label('kind', k)])), state.filters.kind);
  fillSelect($('filter-severity'), all.concat([...SEVERITIES].reverse().map((s) => [s, label('severity', s)])), state.filters.severity);
  const roads = new Set(state.roadIds);
  for (const e of state.alerts.values()) {
    const r = latest(e).location && latest(e).location.road_id;
    if (r) roads.add(r);
  }
  if (state.filters.road) roads.add(state.filters.road);
  fillSelect($('filter-road'), all.concat([...roads].sort().map((r) => [r, r])), state.filters.road);
}

function sevBadge(sev) {
  return h('span', { class: `badge sev sev-${sev}` }, label('severity', sev));
}

function statusBadge(status) {
  return h('span', { class: `badge status status-${status}` }, label('status', status));
}

function alertItem(entry, closed) {
  const d = latest(entry);
  const attention = !closed && needsAttention(entry);
  const badges = [];
  if (closed) {
    badges.push(statusBadge('cleared'));
    if (d.outcome) badges.push(h('span', { class: 'badge' }, label('outcome', d.outcome)));
    if (entry.lost) badges.push(h('span', { class: 'badge' }, t('badge.lost')));
  } else {
    const life = lifecycleStatus(entry);
    if (life === 'escalated' || life === 'redispatch') badges.push(statusBadge(life));
    badges.push(d.acknowledged_by && !attention
      ? h('span', { class: 'badge badge-ok' }, t('badge.acked'))
      : h('span', { class: 'badge badge-unack' }, t('badge.unack')));
    if (d.dispatch && d.dispatch.unit_id) badges.push(h('span', { class: 'badge badge-unit' }, d.dispatch.unit_id));
    else badges.push(h('span', { class: 'badge badge-warn' }, t('badge.nounit')));
    if (d.observed === false) badges.push(h('span', { class: 'badge' }, t('badge.unobserved')));
  }
  const cls = ['alert-item', `sev-${d.severity}`];
  if (state.selected === entry.id) cls.push('selected');
  if (attention) cls.push('attention');
  if (closed) cls.push('is-closed');
  const select = () => selectAlert(entry.id, { zoom: true });
  return h('li', {
    class: cls.join(' '),
    testid: closed ? 'closed-item' : 'alert-item',
    dataset: { alertId: entry.id, severity: d.severity, status: d.status },
    tabindex: 0,
    role: 'button',
    'aria-pressed': state.selected === entry.id ? 'true' : 'false',
    onclick: select,
    onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(); } },
  },
  h('div', { class: `ai-glyph sev-${d.severity}` }, glyph(d)),
  h('div', { class: 'ai-main' },
    h('div', { class: 'ai-top' },
      sevBadge(d.severity),
      h('span', { class: 'ai-kind' }, `${label('kind', d.kind)} · ${label('subtype', d.subtype)}`),
      h('span', { class: 'ai-age', title: fmtTime(entry.docs[0].event_ts) }, fmtAge(entry.docs[0].event_ts))),
    h('div', { class: 'ai-summary' }, d.summary || entry.id),
    h('div', { class: 'ai-place' }, placeText(d.location)),
    h('div', { class: 'ai-badges' }, badges)));
}

function renderQueue() {
  const list = $('alert-queue');
  const open = [...state.alerts.values()].sort(compareAlerts);
  const shown = open.filter(matchesFilters);
  clear(list);
  if (!shown.length) {
    list.append(h('li', { class: 'empty' }, open.length ? t('queue.filtered.empty') : t('queue.empty')));
    return;
  }
  for (const e of shown) list.append(alertItem(e, false));
}

function renderClosed() {
  const list = $('closed-list');
  clear(list);
  $('closed-count').textContent = state.closed.length ? `(${state.closed.length})` : '';
  if (!state.closed.length) {
    list.append(h('li', { class: 'empty' }, t('queue.closed.empty')));
    return;
  }
  for (const e of state.closed) list.append(alertItem(e, true));
}

// ───────────────────────── detail panel ─────────────────────────

function findEntry(id) {
  return state.alerts.get(id) || state.closed.find((c) => c.id === id) || null;
}

/** Show an alert in the detail panel; from the queue (zoom) also bring it into view. */
function selectAlert(id, { zoom = false } = {}) {
  if (state.selected !== id) {
    state.selected = id;
    resetActionForms();
  }
  const entry = findEntry(id);
  const ll = entry && locLatLng(latest(entry));
  if (ll && map.m) {
    if (zoom && map.m.getZoom() < 12) map.m.setView(ll, 12);
    else if (!map.m.getBounds().pad(-0.1).contains(ll)) map.m.panTo(ll);
  }
  for (const aid of map.alertLayers.keys()) state.dirtyAlerts.add(aid);
  renderAll();
}

function deselect() {
  state.selected = null;
  resetActionForms();
  for (const aid of map.alertLayers.keys()) state.dirtyAlerts.add(aid);
  renderAll();
}

function resetActionForms() {
  $('note-text').value = '';
  updateNoteCount();
  $('close-outcome').value = '';
  $('candidates').hidden = true;
  state.candidatesFor = null;
  state.pendingAction = null;
  showActionError(null);
  showActionStatus(null);
}

function row(name, ...value) {
  return [h('dt', null, name), h('dd', null, ...value)];
}

function renderDetail() {
  const panel = $('alert-detail');
  const entry = state.selected ? findEntry(state.selected) : null;
  panel.dataset.alertId = entry ? entry.id : '';
  $('detail-placeholder').hidden = !!entry;
  $('detail-content').hidden = !entry;
  if (!entry) return;

  const d = latest(entry);
  const closed = d.status === 'cleared' || !state.alerts.has(entry.id);
  const body = clear($('detail-body'));
  const loc = d.location || {};
  const det = d.details || {};

  body.append(...[
    h('div', { class: 'detail-head' },
      sevBadge(d.severity),
      statusBadge(closed ? 'cleared' : lifecycleStatus(entry)),
      h('span', { class: 'detail-kind' }, `${label('kind', d.kind)} · ${label('subtype', d.subtype)}`),
      h('button', { class: 'btn btn-ghost btn-icon', type: 'button', title: t('detail.close'), 'aria-label': t('detail.close'), testid: 'detail-close', onclick: deselect }, '×')),
    h('h2', { class: 'detail-summary', testid: 'detail-summary' }, d.summary || entry.id),
    closed ? h('p', { class: 'detail-closed' }, t('detail.closed_alert'), d.outcome ? ` · ${label('outcome', d.outcome)}` : '') : null,
    d.observed === false ? h('p', { class: 'detail-warn' }, t('detail.observed_false')) : null,
  ].filter(Boolean));

  const info = h('dl', { class: 'kv' });
  info.append(
    ...row(t('detail.road'), [loc.road_id, loc.road_name].filter(Boolean).join(' ') || '—'),
    ...row(t('detail.direction'), label('direction', loc.direction)),
    ...row(t('detail.stake'), loc.stake || (typeof loc.stake_m === 'number' ? fmtStake(loc.stake_m) : '—')),
    ...row(t('detail.structure'), loc.structure ? label('structure', loc.structure) : t('structure.none')),
    ...row(t('detail.coords'), typeof loc.lat === 'number' ? `${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}` : '—'),
  );
  if (d.dispatch) {
    const parts = [h('b', null, d.dispatch.unit_id), ` · ${t('detail.attempt', { n: d.dispatch.attempt ?? '?' })}`];
    if (d.dispatch.assigned_by) parts.push(` · ${t('detail.assigned_by', { op: d.dispatch.assigned_by })}`);
    info.append(...row(t('detail.dispatch'), ...parts));
    info.append(...row(t('detail.eta'), `${fmtEta(d.dispatch.eta_s)} · ${fmtDistance(d.dispatch.route_m)}`));
  } else {
    info.append(...row(t('detail.dispatch'), h('span', { class: 'warn-text' }, t('detail.nodispatch'))));
  }
  info.append(...row(t('detail.acknowledged'), d.acknowledged_by
    ? t('detail.acknowledged_by', { op: d.acknowledged_by.operator_id, time: fmtTime(d.acknowledged_by.ts) })
    : h('span', { class: 'warn-text' }, t('detail.not_acknowledged'))));
  info.append(...row(t('detail.started'), `${fmtTime(entry.docs[0].event_ts)} (${fmtAge(entry.docs[0].event_ts)})`));

  // Kind-specific facts an operator looks for first; everything else is in "details".
  const conf = typeof det.max_confidence === 'number' ? det.max_confidence : det.confidence;
  if (typeof conf === 'number') info.append(...row(t('detail.confidence'), fmtPercent(conf)));
  if (det.plate) info.append(...row(t('detail.plate'), h('b', { class: 'plate' }, det.plate)));
  if (det.intercept) {
    const p = det.intercept;
    info.append(...row(t('detail.intercept'), `${p.name || label('intercept', p.kind)} ${p.stake || fmtStake(p.stake_m)} · ${fmtDistance(p.distance_m)}`));
  }
  if (d.kind === 'severe_weather') {
    if (det.level !== undefined) info.append(...row(t('detail.level'), String(det.level)));
    if (typeof det.stake_from_m === 'number' && typeof det.stake_to_m === 'number') {
      info.append(...row(t('detail.stretch'), `${fmtStake(det.stake_from_m)} – ${fmtStake(det.stake_to_m)}`));
    }
    if (det.advice) info.append(...row(t('detail.advice'), det.advice));
    const st = typeof det.station_id === 'string' ? state.stations.get(det.station_id) : null;
    if (st) info.append(...row(t('station.now'), h('span', { testid: 'detail-station' }, `${det.station_name || stationName(st.station_id) || st.station_id}: ${stationLine(st)}`)));
  }
  const sources = Array.isArray(d.source_event_ids) ? d.source_event_ids : [];
  info.append(...row(t('detail.sources'), sources.length
    ? h('span', { class: 'mono small' }, sources.join(', '))
    : '—'));
  info.append(...row(t('detail.id'), h('span', { class: 'mono small' }, entry.id)));
  body.append(info);

  if (Array.isArray(d.notes) && d.notes.length) {
    body.append(h('h3', null, t('detail.notes')),
      h('ul', { class: 'notes' }, d.notes.map((n) => h('li', null,
        h('span', { class: 'note-meta' }, `${n.operator_id} · ${fmtTime(n.ts)}`), h('span', { class: 'note-text' }, n.text)))));
  }
  if (Object.keys(det).length) {
    body.append(h('details', { class: 'raw' }, h('summary', null, t('detail.details')),
      h('pre', null, JSON.stringify(det, null, 2))));
  }

  // Actions: the elements live in the HTML; here they are only enabled or not.
  const acked = isAcknowledged(entry) || state.ackPending.has(entry.id);
  $('btn-acknowledge').disabled = closed || acked;
  $('btn-acknowledge').textContent = acked && !closed ? t('action.acknowledged') : t('action.acknowledge');
  $('btn-assign').disabled = closed;
  $('btn-close').disabled = closed;
  $('close-outcome').disabled = closed;
  $('btn-note').disabled = closed;
  $('note-text').disabled = closed;
  fillSelect($('close-outcome'), [['', t('action.close.outcome')]].concat(OUTCOMES.map((o) => [o, label('outcome', o)])), $('close-outcome').value);
  if (closed) $('candidates').hidden = true;

  renderTimeline(entry);
}

/** A unit's answer in the timeline: "P-03 接受", "P-03 处置完毕 · 误报". */
function ackTimelineItem(a) {
  const status = String(a.status);
  const what = [label('tlack', status)];
  if (a.outcome) what.push(label('outcome', a.outcome));
  return h('li', {
    class: `tl-item tl-ack ack-${status.replace(/[^a-z_]/gi, '')}`,
    testid: 'timeline-ack',
    dataset: { status, unitId: a.unit_id },
  },
  h('div', { class: 'tl-head' },
    h('span', { class: 'tl-time' }, fmtTime(a.ts)),
    h('span', { class: 'tl-ack-text' }, h('b', { class: 'tl-unit' }, a.unit_id), ' ', what.join(' · '))));
}

function renderTimeline(entry) {
  const list = clear($('timeline'));
  const docs = entry.docs;
  // The answers go among the documents by time; the documents keep their own order.
  const acks = entry.acks || [];
  let next = 0;
  const acksUpTo = (ms) => {
    while (next < acks.length && ackMillis(acks[next]) <= ms) list.append(ackTimelineItem(acks[next++]));
  };
  docs.forEach((doc, i) => {
    const docMs = tsMillis(doc.event_ts);
    if (!Number.isNaN(docMs)) acksUpTo(docMs);
    const prev = i > 0 ? docs[i - 1] : null;
    const lines = [];
    const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    if (prev && prev.severity !== doc.severity) lines.push(t('detail.severity_changed', { sev: label('severity', doc.severity) }));
    if (!prev || prev.summary !== doc.summary) lines.push(h('span', { class: 'tl-summary' }, doc.summary || ''));
    if (!prev || !same(prev.dispatch, doc.dispatch)) {
      if (doc.dispatch) {
        let s = `${t('detail.unit')} ${doc.dispatch.unit_id} · ${t('detail.attempt', { n: doc.dispatch.attempt ?? '?' })} · ${t('detail.eta')} ${fmtEta(doc.dispatch.eta_s)}`;
        if (doc.dispatch.assigned_by) s += ` · ${t('detail.assigned_by', { op: doc.dispatch.assigned_by })}`;
        lines.push(s);
      } else {
        lines.push(h('span', { class: 'warn-text' }, t('detail.nodispatch')));
      }
    }
    if (doc.acknowledged_by && (!prev || !same(prev.acknowledged_by, doc.acknowledged_by))) {
      lines.push(`${t('detail.acknowledged')}: ${t('detail.acknowledged_by', { op: doc.acknowledged_by.operator_id, time: fmtTime(doc.acknowledged_by.ts) })}`);
    }
    if (prev && doc.observed !== undefined && prev.observed !== doc.observed) {
      lines.push(doc.observed === false ? t('detail.observed_false') : t('detail.observed_true'));
    }
    const before = new Set(((prev && prev.notes) || []).map((n) => JSON.stringify(n)));
    for (const n of doc.notes || []) {
      if (!before.has(JSON.stringify(n))) lines.push(h('span', { class: 'tl-note' }, `${t('detail.notes')} · ${n.operator_id}: ${n.text}`));
    }
    if (doc.outcome) lines.push(`${t('detail.outcome')}: ${label('outcome', doc.outcome)}`);
    if (doc.closed_by) {
      const who = doc.closed_by.operator_id || doc.closed_by.unit_id || '?';
      lines.push(t('detail.closed_by', { who, time: fmtTime(doc.closed_by.ts) }));
    }
    list.append(h('li', { class: `tl-item status-${doc.status}`, testid: 'timeline-item' },
      h('div', { class: 'tl-head' },
        h('span', { class: 'tl-time', title: `emitted ${fmtTime(doc.emitted_ts)}` }, fmtTime(doc.event_ts)),
        statusBadge(doc.status)),
      lines.map((l) => h('div', { class: 'tl-line' }, l))));
  });
  acksUpTo(Infinity);
}

// ───────────────────────── actions ─────────────────────────

function showActionError(msg) {
  const el = $('action-error');
  el.hidden = !msg;
  el.textContent = msg || '';
}

function showActionStatus(msg) {
  const el = $('action-status');
  el.hidden = !msg;
  el.textContent = msg || '';
}

/**
 * Whether a document since the action was sent shows its effect (`confirmedBy`), or
 * the alert ended.
 */
function actionConfirmed(p) {
  const entry = findEntry(p.alertId);
  return !!entry && entry.docs.slice(p.from).some((d) => d.status === 'cleared' || p.confirmedBy(d));
}

/**
 * POST one operator action; true when the server took it (202). Its "waiting" note
 * stays until a document satisfies `confirmedBy` (see onAlertDoc).
 */
async function act(body, what, confirmedBy = () => false) {
  showActionError(null);
  showActionStatus(null);
  const entry = findEntry(body.alert_id);
  const pending = { alertId: body.alert_id, from: entry ? entry.docs.length : 0, confirmedBy };
  state.pendingAction = null;
  try {
    await api.post('/api/actions', body);
    // The document may already be here (the stream can be quicker than the answer).
    if (!actionConfirmed(pending) && state.selected === body.alert_id) {
      state.pendingAction = pending;
      showActionStatus(`${t('action.sent', { what })} · ${t('action.pending')}`);
    }
    return true;
  } catch (e) {
    if (e.status === 401) { sessionLost(); return false; }
    showActionError(t('action.failed', { msg: e.message }));
    return false;
  }
}

async function onAcknowledge() {
  const id = state.selected;
  if (!id) return;
  const btn = $('btn-acknowledge');
  btn.disabled = true;
  if (await act({ alert_id: id, action: 'acknowledge' }, t('action.acknowledge'), (d) => !!d.acknowledged_by)) {
    const entry = findEntry(id);
    if (entry) entry.localAckAt = entry.docs.length; // silence at once; the update follows
    state.ackPending.add(id);
  }
  renderAll();
}

async function onAssign() {
  const id = state.selected;
  if (!id) return;
  const box = $('candidates');
  if (!box.hidden && state.candidatesFor === id) { box.hidden = true; state.candidatesFor = null; return; }
  state.candidatesFor = id;
  box.hidden = false;
  $('candidates-hint').textContent = t('action.assign.loading');
  const list = clear($('candidate-list'));
  showActionError(null);
  let cands;
  try {
    cands = await api.get(`/api/candidates?alert_id=${encodeURIComponent(id)}`);
  } catch (e) {
    if (e.status === 401) { sessionLost(); return; }
    box.hidden = true;
    showActionError(t('action.failed', { msg: e.message }));
    return;
  }
  if (state.candidatesFor !== id) return; // another alert was chosen meanwhile
  const current = latest(findEntry(id) || { docs: [{}] }).dispatch;
  if (!Array.isArray(cands) || !cands.length) {
    $('candidates-hint').textContent = t('action.assign.none');
    return;
  }
  $('candidates-hint').textContent = t('action.assign.hint');
  for (const c of cands) {
    const isCurrent = current && current.unit_id === c.unit_id;
    list.append(h('li', null, h('button', {
      type: 'button',
      class: `candidate${isCurrent ? ' current' : ''}`,
      testid: 'candidate-item',
      dataset: { unitId: c.unit_id },
      onclick: async (ev) => {
        ev.currentTarget.disabled = true;
        if (await act({ alert_id: id, action: 'assign', unit_id: c.unit_id }, `${t('action.assign')} ${c.unit_id}`,
          (d) => !!d.dispatch && d.dispatch.unit_id === c.unit_id)) {
          box.hidden = true;
          state.candidatesFor = null;
        } else {
          ev.currentTarget.disabled = false;
        }
      },
    },
    h('span', { class: 'cand-unit' }, c.unit_id),
    h('span', { class: `cand-status st-${c.status}` }, label('unitstatus', c.status)),
    h('span', { class: 'cand-eta' }, fmtEta(c.eta_s)),
    h('span', { class: 'cand-route muted' }, fmtDistance(c.route_m)))));
  }
}

async function onClose() {
  const id = state.selected;
  if (!id) return;
  const outcome = $('close-outcome').value;
  if (!outcome) { showActionError(t('action.close.need_outcome')); $('close-outcome').focus(); return; }
  $('btn-close').disabled = true;
  await act({ alert_id: id, action: 'close', outcome }, `${t('action.close')} · ${label('outcome', outcome)}`,
    (d) => d.status === 'cleared');
  renderDetail();
}

async function onNote() {
  const id = state.selected;
  if (!id) return;
  const text = $('note-text').value.trim();
  if (!text) { showActionError(t('action.note.empty')); return; }
  if ([...text].length > NOTE_MAX) { showActionError(t('action.note.too_long')); return; }
  $('btn-note').disabled = true;
  // A note goes out with the alert's next document (docs/LIFECYCLE.md), whenever that is.
  if (await act({ alert_id: id, action: 'note', text }, t('action.note'),
    (d) => Array.isArray(d.notes) && d.notes.some((n) => n.text === text))) {
    $('note-text').value = '';
    updateNoteCount();
  }
  $('btn-note').disabled = false;
}

function updateNoteCount() {
  $('note-count').textContent = `${[...$('note-text').value].length} / ${NOTE_MAX}`;
}

// ───────────────────────── alarm ─────────────────────────

function updateAlarm() {
  const ringing = [...state.alerts.values()].some(needsAttention);
  if (ringing && !alarm.muted) alarm.start();
  else alarm.stop();
  const btn = $('mute');
  btn.textContent = alarm.muted ? t('sound.off') : t('sound.on');
  btn.setAttribute('aria-pressed', alarm.muted ? 'true' : 'false');
  btn.classList.toggle('muted', alarm.muted);
  btn.classList.toggle('ringing', ringing);
  $('sound-unlock').hidden = !(ringing && !alarm.muted && alarm.needsUnlock);
}

// ───────────────────────── map ─────────────────────────

function initMap() {
  if (map.m) { map.m.invalidateSize(); return; }
  // No tile layer: the road network itself is the base map (no internet on site).
  const m = L.map('map', { zoomSnap: 0.25, attributionControl: false, minZoom: 6, maxZoom: 18, zoomControl: true });
  m.setView([27.18, 105.55], 9);
  m.createPane('stretches').style.zIndex = 420; // above the roads (overlayPane 400)
  m.createPane('links').style.zIndex = 430;     // unit → alert lines, under the markers (600)
  map.m = m;
  map.legend = L.control({ position: 'bottomleft' });
  map.legend.onAdd = buildLegend;
  map.legend.addTo(m);
  const fit = L.control({ position: 'topleft' });
  fit.onAdd = () => {
    const b = h('button', { type: 'button', class: 'map-fit', testid: 'map-fit', title: t('map.fit') }, '⤢');
    L.DomEvent.disableClickPropagation(b);
    b.addEventListener('click', fitNetwork);
    return b;
  };
  fit.addTo(m);
}

function buildLegend() {
  const sev = [...SEVERITIES].reverse().map((s) => h('li', null, h('span', { class: `lg-dot sev-${s}` }), label('severity', s)));
  const units = ['available', 'busy', 'off_duty'].map((s) => h('li', null, h('span', { class: `lg-unit st-${s}` }), `${t('legend.unit')} · ${label('unitstatus', s)}`));
  units.push(
    h('li', { testid: 'legend-station' }, h('span', { class: 'lg-station' }, h('span', { class: 'rw-station-dot' })), t('legend.station')),
    h('li', null, h('span', { class: 'lg-station alerting sev-warning' }, h('span', { class: 'rw-station-dot' })), t('legend.station.alerting')));
  // Collapsible, remembered: on a narrow map it would hide too much.
  let open = true;
  try { open = localStorage.getItem('rw.legend') !== 'closed'; } catch { /* ignore */ }
  const el = h('details', { class: 'legend', testid: 'legend', open },
    h('summary', { class: 'legend-title' }, t('legend.heading')),
    h('div', { class: 'legend-body' },
      h('ul', null,
        h('li', null, h('span', { class: 'lg-line lg-carriageway' }), t('legend.carriageway')),
        h('li', null, h('span', { class: 'lg-line lg-tunnel' }), t('legend.tunnel')),
        h('li', null, h('span', { class: 'lg-line lg-bridge' }), t('legend.bridge')),
        h('li', null, h('span', { class: 'lg-line lg-stretch' }), t('legend.stretch'))),
      h('ul', null, sev),
      h('ul', null, units)));
  el.addEventListener('toggle', () => {
    try { localStorage.setItem('rw.legend', el.open ? 'open' : 'closed'); } catch { /* ignore */ }
  });
  L.DomEvent.disableClickPropagation(el);
  return el;
}

function fitNetwork() {
  if (map.roads && map.roads.getLayers().length) map.m.fitBounds(map.roads.getBounds(), { padding: [24, 24] });
}

async function loadRoads() {
  if (state.roads) { drawRoads(); return; }
  try {
    state.roads = await api.get('/api/roads');
  } catch (e) {
    if (e.status === 401) { sessionLost(); return; }
    console.warn('roads not loaded:', e.message);
    return;
  }
  indexRoads();
  drawRoads();
  fitNetwork();
  for (const id of state.alerts.keys()) state.dirtyAlerts.add(id); // stretches need the index
  scheduleRender();
}

function roadStyle(feature) {
  const p = feature.properties || {};
  const kind = p.kind || (feature.geometry && /Line/.test(feature.geometry.type) ? 'carriageway' : 'area');
  const cls = ['rw-road', `rw-kind-${kind}`];
  if (p.structure) cls.push(`rw-structure-${p.structure}`);
  const className = cls.join(' ');
  switch (kind) {
    case 'carriageway':
      if (p.structure === 'tunnel') return { className, color: '#b08cff', weight: 4, dashArray: '7 5', lineCap: 'butt' };
      if (p.structure === 'bridge') return { className, color: '#37c8dc', weight: 5 };
      return { className, color: '#8da2c0', weight: 3 };
    case 'ramp': return { className, color: '#62728a', weight: 2 };
    case 'tunnel': return { className, color: '#b08cff', weight: 1, fillColor: '#b08cff', fillOpacity: 0.25 };
    case 'bridge': return { className, color: '#37c8dc', weight: 1, fillColor: '#37c8dc', fillOpacity: 0.25 };
    case 'service_area': return { className, color: '#3fb37f', weight: 1, fillColor: '#3fb37f', fillOpacity: 0.3 };
    case 'toll_plaza': return { className, color: '#9aa7b8', weight: 1, fillColor: '#9aa7b8', fillOpacity: 0.3 };
    case 'work_zone': return { className, color: '#f59e0b', weight: 1, fillColor: '#f59e0b', fillOpacity: 0.35, dashArray: '3 3' };
    default: return { className, color: '#8da2c0', weight: 1, fillOpacity: 0.2 };
  }
}

function roadTooltip(p) {
  const dir = p.direction ? label('direction', p.direction) : '';
  const en = lang() === 'en';
  const name = (en && p.name_en) || p.name || '';
  const structure = p.structure_name ? ` · ${(en && p.structure_name_en) || p.structure_name}` : '';
  let stakes = '';
  if (typeof p.stake_start_m === 'number' && typeof p.stake_end_m === 'number') stakes = ` ${fmtStake(p.stake_start_m)} – ${fmtStake(p.stake_end_m)}`;
  else if (typeof p.stake_m === 'number') stakes = ` ${fmtStake(p.stake_m)}`;
  const kind = ['carriageway', 'ramp'].includes(p.kind) ? '' : ` (${p.kind})`;
  return `${p.road_id || ''} ${name}${kind} ${dir}${stakes}${structure}`.replace(/\s+/g, ' ').trim();
}

function drawRoads() {
  if (!state.roads || !map.m) return;
  if (map.roads) map.roads.remove();
  if (map.labels) map.labels.remove();
  map.roads = L.geoJSON(state.roads, {
    style: roadStyle,
    pointToLayer: (f, ll) => {
      const p = f.properties || {};
      const className = `rw-road rw-kind-${p.kind || 'point'}`;
      if (p.kind === 'weather_station') return L.circleMarker(ll, { className, radius: 3, color: '#0b1220', weight: 1, fillColor: '#7dd3fc', fillOpacity: 1 });
      return L.circleMarker(ll, { className, radius: 4, color: '#0b1220', weight: 1.5, fillColor: '#dbe4f0', fillOpacity: 1 });
    },
    onEachFeature: (f, layer) => {
      const text = roadTooltip(f.properties || {});
      if (text) layer.bindTooltip(asText(text), { sticky: true, className: 'rw-tooltip' });
    },
  }).addTo(map.m);
  map.roads.bringToBack();

  // A road-number shield per road, on its middle carriageway piece.
  map.labels = L.layerGroup().addTo(map.m);
  const byRoad = new Map();
  for (const f of state.roads.features || []) {
    const p = f.properties || {};
    if (p.kind !== 'carriageway' || !p.road_id || !f.geometry || f.geometry.type !== 'LineString') continue;
    if (!byRoad.has(p.road_id)) byRoad.set(p.road_id, []);
    byRoad.get(p.road_id).push(f);
  }
  for (const [roadId, fs] of byRoad) {
    const f = fs[Math.floor(fs.length / 2)];
    const c = f.geometry.coordinates[Math.floor(f.geometry.coordinates.length / 2)];
    L.marker([c[1], c[0]], {
      interactive: false,
      keyboard: false,
      icon: L.divIcon({ className: 'rw-road-label', html: `<span>${escapeHtml(roadId)}</span>`, iconSize: [0, 0] }),
    }).addTo(map.labels);
  }
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/** Metres between two [lat, lng] points (equirectangular; fine at road-segment scale). */
function metres(a, b) {
  const R = 6371008.8;
  const rad = Math.PI / 180;
  const x = (b[1] - a[1]) * rad * Math.cos(((a[0] + b[0]) / 2) * rad);
  const y = (b[0] - a[0]) * rad;
  return Math.hypot(x, y) * R;
}

/** Carriageway lines per road with their stakes, to find a stake range on the map. */
function indexRoads() {
  state.roadIndex = new Map();
  state.stationInfo = new Map();
  const ids = new Set();
  for (const f of (state.roads && state.roads.features) || []) {
    const p = f.properties || {};
    if (!f.geometry) continue;
    if (p.kind === 'weather_station') {
      const sid = typeof p.station_id === 'string' ? p.station_id : typeof f.id === 'string' ? f.id : null;
      if (sid) {
        state.stationInfo.set(sid, {
          name: typeof p.name === 'string' ? p.name : '',
          name_en: typeof p.name_en === 'string' ? p.name_en : '',
          road_id: typeof p.road_id === 'string' ? p.road_id : '',
          stake: typeof p.stake === 'string' ? p.stake : typeof p.stake_m === 'number' ? fmtStake(p.stake_m) : '',
        });
      }
    }
    if (p.road_id && (p.kind === 'carriageway' || p.kind === undefined)) ids.add(p.road_id);
    if (p.kind !== 'carriageway' || typeof p.stake_start_m !== 'number' || typeof p.stake_end_m !== 'number') continue;
    const lines = f.geometry.type === 'LineString' ? [f.geometry.coordinates]
      : f.geometry.type === 'MultiLineString' ? f.geometry.coordinates : [];
    // A MultiLineString's stakes run over its parts in order, so join them into one line.
    const pts = lines.flat().map((c) => [c[1], c[0]]);
    if (pts.length < 2) continue;
    const cum = [0];
    for (let i = 1; i < pts.length; i++) cum.push(cum[i - 1] + metres(pts[i - 1], pts[i]));
    if (!state.roadIndex.has(p.road_id)) state.roadIndex.set(p.road_id, []);
    state.roadIndex.get(p.road_id).push({ direction: p.direction, s0: p.stake_start_m, s1: p.stake_end_m, pts, cum, len: cum[cum.length - 1] });
  }
  state.roadIds = [...ids].sort();
}

function pointAt(seg, d) {
  const { pts, cum } = seg;
  let i = 1;
  while (i < pts.length - 1 && cum[i] < d) i += 1;
  const span = cum[i] - cum[i - 1];
  const f = span > 0 ? (d - cum[i - 1]) / span : 0;
  return [pts[i - 1][0] + (pts[i][0] - pts[i - 1][0]) * f, pts[i - 1][1] + (pts[i][1] - pts[i - 1][1]) * f];
}

/** The part of a carriageway line between two stakes (stakes are linear along the line). */
function clipByStake(seg, lo, hi) {
  if (seg.s1 === seg.s0 || seg.len <= 0) return null;
  let a = ((lo - seg.s0) / (seg.s1 - seg.s0)) * seg.len;
  let b = ((hi - seg.s0) / (seg.s1 - seg.s0)) * seg.len;
  if (a > b) [a, b] = [b, a];
  a = Math.max(0, a);
  b = Math.min(seg.len, b);
  if (b - a < 1) return null;
  const out = [pointAt(seg, a)];
  for (let i = 0; i < seg.pts.length; i++) if (seg.cum[i] > a && seg.cum[i] < b) out.push(seg.pts[i]);
  out.push(pointAt(seg, b));
  return out;
}

/** Polylines of a severe-weather alert's stretch, or null when the network cannot tell. */
function stretchLines(doc) {
  const det = doc.details || {};
  const roadId = doc.location && doc.location.road_id;
  const segs = roadId ? state.roadIndex.get(roadId) : null;
  if (!segs || !segs.length) return null;
  let ranges = Array.isArray(det.stretches) && det.stretches.length
    ? det.stretches.filter((s) => typeof s.stake_from_m === 'number' && typeof s.stake_to_m === 'number')
    : [];
  if (!ranges.length && typeof det.stake_from_m === 'number' && typeof det.stake_to_m === 'number') {
    ranges = [{ direction: null, stake_from_m: det.stake_from_m, stake_to_m: det.stake_to_m }];
  }
  const lines = [];
  for (const r of ranges) {
    const lo = Math.min(r.stake_from_m, r.stake_to_m);
    const hi = Math.max(r.stake_from_m, r.stake_to_m);
    for (const seg of segs) {
      if (r.direction && seg.direction && seg.direction !== r.direction && seg.direction !== 'both') continue;
      const line = clipByStake(seg, lo, hi);
      if (line) lines.push(line);
    }
  }
  return lines.length ? lines : null;
}

function alertIcon(doc, selected, attention) {
  const cls = ['rw-alert', `sev-${doc.severity}`];
  if (selected) cls.push('selected');
  if (attention) cls.push('attention');
  return L.divIcon({ className: cls.join(' '), html: `<span>${escapeHtml(glyph(doc))}</span>`, iconSize: [26, 26] });
}

function drawAlert(entry) {
  const d = latest(entry);
  const ll = locLatLng(d);
  if (!ll) return null;
  const group = L.layerGroup();
  const select = () => selectAlert(entry.id);
  if (d.kind === 'severe_weather') {
    const color = SEV_COLOR[d.severity] || SEV_COLOR.warning;
    const lines = stretchLines(d);
    if (lines) {
      for (const line of lines) {
        L.polyline(line, { pane: 'stretches', className: 'rw-stretch', color, weight: 11, opacity: 0.55, lineCap: 'butt' })
          .on('click', select).bindTooltip(asText(d.summary || ''), { sticky: true, className: 'rw-tooltip' }).addTo(group);
      }
    } else {
      const det = d.details || {};
      const span = typeof det.stake_from_m === 'number' && typeof det.stake_to_m === 'number' ? Math.abs(det.stake_to_m - det.stake_from_m) / 2 : 2500;
      L.circle(ll, { pane: 'stretches', className: 'rw-stretch', radius: Math.max(span, 500), color, weight: 1, fillColor: color, fillOpacity: 0.18 })
        .on('click', select).addTo(group);
    }
  }
  const marker = L.marker(ll, {
    icon: alertIcon(d, state.selected === entry.id, needsAttention(entry)),
    zIndexOffset: 1000 + severityRank(d.severity) * 100 + (state.selected === entry.id ? 1000 : 0),
    keyboard: false,
  });
  marker.on('click', select);
  marker.on('add', () => { const el = marker.getElement(); if (el) el.dataset.alertId = entry.id; });
  if (d.kind === 'severe_weather') {
    // Built when it opens: the summary, then what its station measures now.
    marker.bindTooltip(() => weatherAlertTip(entry.id), { direction: 'top', offset: [0, -14], className: 'rw-tooltip' });
  } else {
    marker.bindTooltip(asText(d.summary || entry.id), { direction: 'top', offset: [0, -14], className: 'rw-tooltip' });
  }
  marker.addTo(group);
  return group;
}

function weatherAlertTip(id) {
  const entry = findEntry(id);
  if (!entry) return h('div', null, id);
  const d = latest(entry);
  const sid = d.details && typeof d.details.station_id === 'string' ? d.details.station_id : null;
  const st = sid ? state.stations.get(sid) : null;
  return h('div', null,
    h('div', null, d.summary || id),
    st ? h('div', { class: 'muted' }, `${t('station.now')} · ${stationLine(st)}`) : null);
}

function unitIcon(u) {
  const title = u.alert_id ? `${u.unit_id} ▸` : u.unit_id;
  return L.divIcon({ className: `rw-unit st-${u.status}`, html: `<span>${escapeHtml(title)}</span>`, iconSize: [0, 0] });
}

function syncMap() {
  if (!map.m) return;
  // Alerts: redraw the dirty ones; drop closed and filtered-out ones.
  const visible = new Set();
  for (const [id, entry] of state.alerts) if (matchesFilters(entry)) visible.add(id);
  for (const [id, g] of map.alertLayers) {
    if (!visible.has(id)) { g.remove(); map.alertLayers.delete(id); }
  }
  for (const id of visible) {
    if (map.alertLayers.has(id) && !state.dirtyAlerts.has(id)) continue;
    const old = map.alertLayers.get(id);
    if (old) old.remove();
    const g = drawAlert(state.alerts.get(id));
    if (g) { g.addTo(map.m); map.alertLayers.set(id, g); } else map.alertLayers.delete(id);
  }
  state.dirtyAlerts.clear();

  // Units: marker per unit, and a line to the place of the alert it is assigned to.
  for (const [id, u] of state.units) {
    if (typeof u.lat !== 'number' || typeof u.lon !== 'number') continue;
    let rec = map.unitLayers.get(id);
    const ll = L.latLng(u.lat, u.lon);
    const tip = `${u.unit_id} · ${label('unitstatus', u.status)}${typeof u.speed_kmh === 'number' ? ` · ${Math.round(u.speed_kmh)} km/h` : ''}${u.alert_id ? ` · → ${u.alert_id}` : ''} · ${fmtTime(u.ts)}`;
    if (!rec) {
      const marker = L.marker(ll, { icon: unitIcon(u), keyboard: false, zIndexOffset: 500 });
      marker.bindTooltip(asText(tip), { direction: 'top', className: 'rw-tooltip' });
      // Clicking a unit opens the alert it is assigned to (looked up at click time).
      marker.on('click', () => {
        const cur = state.units.get(id);
        if (cur && cur.alert_id && findEntry(cur.alert_id)) selectAlert(cur.alert_id);
      });
      rec = { marker, link: null, sig: '' };
      map.unitLayers.set(id, rec);
      marker.addTo(map.m);
    }
    const sig = `${u.status}|${u.alert_id || ''}`;
    rec.marker.setLatLng(ll);
    if (rec.sig !== sig) { rec.marker.setIcon(unitIcon(u)); rec.sig = sig; }
    const el = rec.marker.getElement(); // setIcon replaces the element
    if (el) el.dataset.unitId = id;
    rec.marker.setTooltipContent(asText(tip));
    const target = u.alert_id && state.alerts.has(u.alert_id) ? locLatLng(latest(state.alerts.get(u.alert_id))) : null;
    if (target) {
      const pts = [ll, target];
      if (rec.link) rec.link.setLatLngs(pts);
      else rec.link = L.polyline(pts, { pane: 'links', className: 'rw-link', color: '#e6edf7', weight: 2, opacity: 0.8, dashArray: '5 6', interactive: false }).addTo(map.m);
    } else if (rec.link) {
      rec.link.remove();
      rec.link = null;
    }
  }

  syncStations();
}

// ───────────────────────── wiring ─────────────────────────

function wireStaticControls() {
  $('login-form').addEventListener('submit', onLoginSubmit);
  for (const b of document.querySelectorAll('.lang-toggle')) b.addEventListener('click', toggleLang);
  $('logout').addEventListener('click', logout);
  $('mute').addEventListener('click', () => {
    alarm.setMuted(!alarm.muted);
    alarm.unlock();
    updateAlarm();
  });
  $('sound-unlock').addEventListener('click', () => { alarm.unlock(); setTimeout(updateAlarm, 100); });
  for (const [id, key] of [['filter-kind', 'kind'], ['filter-severity', 'severity'], ['filter-road', 'road']]) {
    $(id).addEventListener('change', (e) => { state.filters[key] = e.target.value; renderAll(); });
  }
  $('btn-acknowledge').addEventListener('click', onAcknowledge);
  $('btn-assign').addEventListener('click', onAssign);
  $('btn-close').addEventListener('click', onClose);
  $('btn-note').addEventListener('click', onNote);
  $('note-text').addEventListener('input', updateNoteCount);
  $('close-outcome').addEventListener('change', () => showActionError(null));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.selected && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) deselect();
  });
  onLangChange(() => {
    if (!state.session) return;
    setConn(state.conn);
    if (map.m) {
      map.legend.remove();
      map.legend.addTo(map.m);
      drawRoads();
      for (const id of map.alertLayers.keys()) state.dirtyAlerts.add(id);
    }
    renderAll();
  });
  // Ages in the queue, and whether sound is allowed yet.
  let tick = 0;
  setInterval(() => {
    if (!state.session) return;
    tick += 1;
    updateAlarm();
    if (tick % 10 === 0) { renderQueue(); renderClosed(); syncStations(true); }
  }, 1000);
}

boot();
