// The patrol-unit app (served at /unit), phone first. A unit signs in with its id and
// token, gets the documents addressed to it (its dispatch.<unit_id> topic) through
// EventSource('/api/events') and GET /api/unit/dispatches, answers with POST
// /api/unit/ack, and may share its position with POST /api/unit/position.
//
// A new dispatch must not be missed: until the unit accepts or declines it, its card
// covers the whole screen, a WebAudio alarm rings every 3 s and the phone vibrates.

import { t, label, applyI18n, toggleLang, onLangChange } from '/static/common/i18n.js';
import { api, setCsrf } from '/static/common/api.js';
import { Alarm } from '/static/common/alarm.js';
import { h, clear, tsMillis, fmtTime, fmtEta, fmtDistance, fmtStake } from '/static/common/util.js';

const $ = (id) => document.getElementById(id);
const OUTCOMES = ['confirmed', 'false_alarm', 'not_found', 'duplicate'];
const POSITION_MIN_INTERVAL_MS = 5000;   // at most one position report per 5 s
const POSITION_KEEPALIVE_MS = 30000;     // a standing car still reports (dispatch wants fresh positions)
const ACKS_KEPT = 100;
const ACK_STATUSES = ['accepted', 'declined', 'arrived', 'resolved'];

const state = {
  session: null,
  es: null,
  conn: 'connecting',
  ready: false,
  picture: false,          // receiving a new connection's picture (see onAlert)
  reconnectDelay: 2000,
  reconnectTimer: null,
  docs: new Map(),         // alert_id → latest document addressed to this unit (Map keeps arrival order)
  currentId: null,         // the alert this unit is assigned to now
  reassigned: new Set(),   // alerts the platform no longer lists as this unit's
  acks: {},                // alert_id → the last status this unit sent (kept in localStorage)
  // alert_id → the offer this unit declined last: {ms: the decline's time by its `ack`
  // event (null until that came), attempt and dispatch: what it declined} (localStorage).
  // A document addressed to the unit that is newer than that is a new offer (isNewOffer).
  declines: {},
  offers: new Map(),       // alert_id → the latest assignment document (new, redispatch) addressed to this unit
  reoffered: new Set(),    // alerts offered again after this unit had declined them
  sentAcks: new Map(),     // alert_id → a status sent (202) whose `ack` event has not come yet
  confirmed: new Map(),    // alert_id → {status, ts}: the last answer the server's `ack` event showed
  refreshTimer: null,
  serverCurrent: undefined, // the current alert by GET /api/unit/dispatches (undefined: not asked yet)
  serverAskedAt: 0,         // when that was asked
  arrivedAt: new Map(),     // alert_id → when its latest document came on the stream
  position: null,          // last fix {lon, lat, speed_kmh}
  lastSentMs: 0,
  watchId: null,
  keepalive: null,
  wakeLock: null,
  busy: false,
};

function vibrate() {
  if (navigator.vibrate) {
    try { navigator.vibrate([500, 200, 500, 200, 900]); } catch { /* not allowed */ }
  }
}

// Higher and more urgent than the console's tone: it has to cut through road noise.
const alarm = new Alarm({
  intervalMs: 3000,
  tones: [[988, 0.22], [740, 0.22], [988, 0.22], [740, 0.22]],
  storageKey: 'rw.unit.muted',
  onRing: vibrate,
});

// ───────────────────────── session ─────────────────────────

async function boot() {
  applyI18n(document);
  wire();
  window.addEventListener('hashchange', () => { signInFromFragment(); });
  if (await signInFromFragment()) return;
  try {
    const me = await api.get('/api/me');
    if (me && me.role === 'unit') { startSession(me); return; }
  } catch { /* sign in */ }
  showLogin();
}

/**
 * A prefilled sign-in link (the demo prints one): /unit#unit_id=P-01&token=…. The
 * fragment never reaches the server; it is taken off the address bar (and so off the
 * history) at once, so the token does not stay visible, then used to sign in.
 * Returns whether the fragment held credentials.
 */
async function signInFromFragment() {
  const hash = window.location.hash.replace(/^#/, '');
  if (!hash) return false;
  const params = new URLSearchParams(hash);
  const unitId = (params.get('unit_id') || '').trim();
  const token = params.get('token') || '';
  if (!unitId || !token) return false;
  history.replaceState(history.state, '', window.location.pathname + window.location.search);
  if (state.session) endSession(); // a link for another unit (or the same) replaces this session
  $('login').hidden = false;
  $('app').hidden = true;
  $('login-id').value = unitId;
  $('login-token').value = token;
  await signIn(unitId, token, false);
  return true;
}

function showLogin(message) {
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').hidden = !message;
  $('login-error').textContent = message || '';
  $('login-submit').disabled = false;
  $('login-submit').textContent = t('login.submit');
  $('login-id').focus();
}

async function onLogin(ev) {
  ev.preventDefault();
  await signIn($('login-id').value.trim(), $('login-token').value, true);
}

/** POST /api/login as a unit; `gesture`: a tap started it (which allows sound). */
async function signIn(unitId, token, gesture) {
  $('login-submit').disabled = true;
  $('login-submit').textContent = t('login.busy');
  $('login-error').hidden = true;
  try {
    const me = await api.post('/api/login', { unit_id: unitId, token });
    if (!me || me.role !== 'unit') throw Object.assign(new Error(t('unit.login.bad')), { status: 401 });
    $('login-token').value = '';
    if (gesture) alarm.unlock(); // this tap allows sound from now on
    startSession(me);
  } catch (e) {
    showLogin(e.status === 401 ? t('unit.login.bad') : e.status === 429 ? t('login.throttled') : t('login.failed', { msg: e.message }));
  }
}

function acksKey() {
  return `rw.unit.${state.session.unit_id}.acks`;
}

function declinesKey() {
  return `rw.unit.${state.session.unit_id}.declines`;
}

function startSession(me) {
  state.session = me;
  setCsrf(me.csrf);
  try { state.acks = JSON.parse(localStorage.getItem(acksKey()) || '{}') || {}; } catch { state.acks = {}; }
  try { state.declines = JSON.parse(localStorage.getItem(declinesKey()) || '{}') || {}; } catch { state.declines = {}; }
  if (typeof state.acks !== 'object' || Array.isArray(state.acks)) state.acks = {};
  if (typeof state.declines !== 'object' || Array.isArray(state.declines)) state.declines = {};
  try {
    const s = localStorage.getItem(`rw.unit.${me.unit_id}.status`);
    if (s) $('unit-status').value = s;
  } catch { /* ignore */ }
  $('login').hidden = true;
  $('app').hidden = false;
  $('unit-id').textContent = me.unit_id;
  document.title = `${me.unit_id} · roadwatch`;
  connect();
  refreshDispatches();
  keepAwake();
  render();
}

async function logout() {
  try { await api.post('/api/logout'); } catch { /* ends here anyway */ }
  endSession();
  showLogin();
}

function endSession() {
  if (state.es) state.es.close();
  state.es = null;
  clearTimeout(state.reconnectTimer);
  stopSharing();
  alarm.stop();
  setCsrf(null);
  state.session = null;
  state.docs.clear();
  state.currentId = null;
  state.reassigned.clear();
  state.serverCurrent = undefined;
  state.arrivedAt.clear();
  state.sentAcks.clear();
  state.confirmed.clear();
  state.offers.clear();
  state.reoffered.clear();
  if (state.wakeLock) { state.wakeLock.release().catch(() => {}); state.wakeLock = null; }
  render();
}

function sessionLost() {
  endSession();
  showLogin();
}

function saveAcks() {
  const ids = Object.keys(state.acks);
  // Keep the newest ACKS_KEPT answers (object keys keep insertion order).
  for (const id of ids.slice(0, Math.max(0, ids.length - ACKS_KEPT))) delete state.acks[id];
  try { localStorage.setItem(acksKey(), JSON.stringify(state.acks)); } catch { /* ignore */ }
}

function saveDeclines() {
  const ids = Object.keys(state.declines);
  for (const id of ids.slice(0, Math.max(0, ids.length - ACKS_KEPT))) delete state.declines[id];
  try { localStorage.setItem(declinesKey(), JSON.stringify(state.declines)); } catch { /* ignore */ }
}

/** Keep the screen on while signed in, where the browser allows it. */
async function keepAwake() {
  if (!('wakeLock' in navigator) || document.visibilityState !== 'visible' || !state.session) return;
  try { state.wakeLock = await navigator.wakeLock.request('screen'); } catch { /* refused: fine */ }
}

// ───────────────────────── dispatches ─────────────────────────

/**
 * Ask the server which alert is this unit's now. Its answer only adds: a current alert
 * the stream has not brought (after a gap), or a newer one. It never takes an offer off
 * the screen, since the answer may lag behind the stream; when it disagrees the card
 * says so, and the ack itself is refused (403) if the alert really went elsewhere.
 */
async function refreshDispatches() {
  let res;
  const askedAt = Date.now();
  try {
    res = await api.get('/api/unit/dispatches');
  } catch (e) {
    if (e.status === 401) sessionLost();
    return;
  }
  if (!res) return;
  for (const d of res.earlier || []) if (!state.docs.has(d.alert_id)) remember(d);
  const cur = res.current && typeof res.current.alert_id === 'string' ? res.current : null;
  state.serverCurrent = cur ? cur.alert_id : null;
  state.serverAskedAt = askedAt;
  if (cur) {
    if (!state.docs.has(cur.alert_id)) remember(cur);
    const mine = state.currentId ? state.docs.get(state.currentId) : null;
    // Judged on the newest document this page has of it (the answer may lag the stream).
    const known = state.docs.get(cur.alert_id) || cur;
    if ((!mine || mine.status === 'cleared') && mayOffer(isMine(known) ? known : cur, false)) setCurrent(cur.alert_id);
  }
  render();
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refreshDispatches, 800);
}

function remember(doc) {
  if (!doc || typeof doc.alert_id !== 'string') return;
  state.docs.delete(doc.alert_id); // re-insert: the Map's order is the order of arrival
  state.docs.set(doc.alert_id, doc);
  if (isMine(doc) && (doc.status === 'new' || doc.status === 'redispatch')) state.offers.set(doc.alert_id, doc);
}

function isMine(doc) {
  return !!doc && !!doc.dispatch && typeof doc.dispatch === 'object' && !!state.session
    && doc.dispatch.unit_id === state.session.unit_id;
}

/** What tells one offer from another: an update of an alert repeats its dispatch as it is. */
function dispatchKey(d) {
  if (!d || typeof d !== 'object') return null;
  return JSON.stringify([d.unit_id ?? null, d.attempt ?? null, d.assigned_by ?? null, d.eta_s ?? null, d.route_m ?? null]);
}

function finite(x) {
  return typeof x === 'number' && Number.isFinite(x);
}

/** The assignment document behind `doc` (an update carries the dispatch of the offer before it). */
function offerBehind(doc) {
  if (doc.status === 'new' || doc.status === 'redispatch') return doc;
  const o = state.offers.get(doc.alert_id);
  return o && dispatchKey(o.dispatch) === dispatchKey(doc.dispatch) ? o : doc;
}

/**
 * Whether `doc` (addressed to this unit) offers the alert again after the unit declined
 * it (`decl`, see state.declines). The offer behind it is a re-dispatch whose time
 * (`event_ts`: an operator's assignment carries the action's time, on the clock of the
 * decline's `ack`) is after the decline's; or, without both times, a later dispatch
 * attempt than the one declined; or, without the decline's time yet, a re-dispatch that
 * came on the live stream and is not the offer declined. A replayed old document is none
 * of these; an update repeating the declined dispatch neither.
 */
function isNewOffer(doc, decl, live) {
  const offer = offerBehind(doc);
  const d = offer.dispatch || {};
  const ms = tsMillis(offer.event_ts);
  if (offer.status === 'redispatch' && finite(decl.ms) && !Number.isNaN(ms)) return ms > decl.ms;
  if (finite(d.attempt) && finite(decl.attempt) && d.attempt > decl.attempt) return true;
  return live && !finite(decl.ms) && offer === doc && doc.status === 'redispatch' && dispatchKey(d) !== decl.dispatch;
}

/**
 * Whether `doc` may become this unit's current alert given the unit's last answer to it:
 * not after `resolved`; after `declined` only as a new offer (which then starts afresh).
 */
function mayOffer(doc, live) {
  const id = doc.alert_id;
  const answered = state.acks[id];
  if (answered === 'resolved') return false;
  if (answered !== 'declined') return true;
  if (!isMine(doc) || doc.status === 'cleared') return false;
  const kept = state.declines[id];
  const decl = kept && typeof kept === 'object' ? kept : { ms: null, attempt: null, dispatch: null };
  if (!isNewOffer(doc, decl, live)) return false;
  // Offered again: the decline answered the offer before; this one is unanswered. The
  // decline itself is kept, so that a replay of its `ack` event is known as old (onAck).
  delete state.acks[id];
  saveAcks();
  state.sentAcks.delete(id);
  state.confirmed.delete(id);
  state.reoffered.add(id);
  return true;
}

function setCurrent(id) {
  // One assignment at a time: the one before is history now (renderEarlier lists it).
  if (state.currentId !== id) hideMessages();
  state.currentId = id;
  state.reassigned.delete(id);
}

function onAlert(doc) {
  if (!doc || typeof doc.alert_id !== 'string') return;
  remember(doc);
  if (state.picture) {
    // The picture of a new connection holds every open alert ever addressed to this
    // unit, also those that went to another unit since (that unit's documents are not
    // ours to see). Which one is ours now, GET /api/unit/dispatches says at `ready`.
    render();
    return;
  }
  state.arrivedAt.set(doc.alert_id, Date.now());
  const mine = isMine(doc);
  const answered = state.acks[doc.alert_id];
  if (doc.status !== 'cleared' && mine && mayOffer(doc, true)) {
    // Also an alert this unit declined earlier, when this is a new offer of it.
    setCurrent(doc.alert_id);
  } else if (doc.status !== 'cleared' && !mine && state.currentId === doc.alert_id) {
    state.reassigned.add(doc.alert_id);
    state.currentId = null;
  } else if (doc.status === 'cleared' && state.currentId === doc.alert_id && answered !== 'accepted' && answered !== 'arrived') {
    // Ended before this unit took it on: nothing left to do, it goes to the list.
    state.currentId = null;
  }
  render();
}

function onUnitState(u) {
  if (!u || u.unit_id !== state.session.unit_id) return;
  // The platform's view of our assignment differs from ours: ask it.
  if (state.ready && (u.alert_id || null) !== (state.currentId || null)) scheduleRefresh();
}

/**
 * This unit's own answer as the server read it (`ack` event, docs/CONSOLE.md "Live
 * events"): it confirms what the card shows, and brings an answer this page did not
 * send itself (another device, or a page that lost its localStorage) onto the card.
 */
function onAck(a) {
  if (!state.session || !a || typeof a !== 'object') return;
  if (typeof a.alert_id !== 'string' || !a.alert_id || a.unit_id !== state.session.unit_id) return;
  if (!ACK_STATUSES.includes(a.status)) return;
  const id = a.alert_id;
  const sent = state.sentAcks.get(id);
  if (sent && sent !== a.status) return; // an earlier answer: the one sent since is still on its way
  const ms = tsMillis(a.ts);
  if (a.status === 'declined' && sent !== 'declined') {
    // A decline of an earlier offer than the latest one to this unit (a replay after a
    // reconnect, or late): the new offer stands.
    const offer = state.offers.get(id);
    if (offer && isNewOffer(offer, { ms: Number.isNaN(ms) ? null : ms, attempt: null, dispatch: null }, false)) return;
  }
  state.sentAcks.delete(id);
  state.confirmed.set(id, { status: a.status, ts: a.ts });
  if (state.acks[id] !== a.status) {
    state.acks[id] = a.status;
    saveAcks();
  }
  if (a.status === 'declined') noteDecline(id, Number.isNaN(ms) ? null : ms, sent === 'declined');
  else state.reoffered.delete(id);
  if ((a.status === 'declined' || a.status === 'resolved') && state.currentId === id) state.currentId = null;
  render();
}

/**
 * Keep what a decline answered: its time (from the `ack` event) and the offer declined
 * (from the page, when it sent it; otherwise the latest offer known from before it).
 */
function noteDecline(id, ms, ours) {
  let decl = state.declines[id];
  if (!ours || !decl || typeof decl !== 'object') {
    const offer = state.offers.get(id);
    const om = offer ? tsMillis(offer.event_ts) : NaN;
    const before = offer && (ms === null || Number.isNaN(om) || om <= ms);
    decl = {
      ms: null,
      attempt: before && finite(offer.dispatch.attempt) ? offer.dispatch.attempt : null,
      dispatch: before ? dispatchKey(offer.dispatch) : null,
    };
  }
  if (ms !== null && !(finite(decl.ms) && decl.ms > ms)) decl.ms = ms;
  delete state.declines[id]; // re-insert: newest last (saveDeclines keeps the newest)
  state.declines[id] = decl;
  saveDeclines();
  state.reoffered.delete(id);
}

/** What this unit has to do about its current alert: offered, accepted, arrived. */
function stage(doc) {
  const a = state.acks[doc.alert_id];
  if (a === 'accepted' || a === 'arrived') return a;
  return 'offered';
}

async function sendAck(status) {
  const id = state.currentId;
  if (!id || state.busy) return;
  let body = { alert_id: id, status };
  if (status === 'resolved') {
    const outcome = $('resolve-outcome').value;
    if (!outcome) {
      showError(t('unit.outcome.need'));
      $('resolve-outcome').focus();
      return;
    }
    body = { ...body, outcome };
  }
  state.busy = true;
  hideMessages();
  setButtonsDisabled(true);
  const confirmedBefore = state.confirmed.get(id);
  const answering = state.docs.get(id);
  try {
    await api.post('/api/unit/ack', body);
    state.acks[id] = status;
    saveAcks();
    if (status === 'declined') {
      // What was declined; the time comes with the server's `ack` event (noteDecline).
      const d = answering && answering.dispatch;
      const had = state.declines[id];
      const conf = state.confirmed.get(id);
      const came = conf && conf !== confirmedBefore && conf.status === 'declined';
      delete state.declines[id];
      state.declines[id] = {
        ms: came && had && finite(had.ms) ? had.ms : null,
        attempt: d && finite(d.attempt) ? d.attempt : null,
        dispatch: dispatchKey(d),
      };
      saveDeclines();
      state.reoffered.delete(id);
    } else {
      state.reoffered.delete(id);
    }
    // Taken: shown at once; the server's own `ack` event confirms it (onAck), unless that
    // came already (the stream can be quicker than the answer to the POST).
    const conf = state.confirmed.get(id);
    if (!(conf && conf !== confirmedBefore && conf.status === status)) state.sentAcks.set(id, status);
    if (status === 'declined' || status === 'resolved') state.currentId = null;
    followJob(status);
    showOk(t('unit.sent', { what: label('ackdone', status) }));
  } catch (e) {
    if (e.status === 401) { state.busy = false; sessionLost(); return; }
    if (e.status === 403) {
      // Not this unit's any more: show it as such instead of ringing on.
      state.reassigned.add(id);
      state.currentId = null;
    }
    showError(t('unit.failed', { msg: e.message }));
  } finally {
    state.busy = false;
    setButtonsDisabled(false);
  }
  render();
}

/**
 * The status sent with positions follows the job, as the dispatcher does (busy from
 * `accepted` until `resolved`), so a shared position never says "available" mid-job.
 * Off duty is the officer's own choice and is left alone.
 */
function followJob(ack) {
  const sel = $('unit-status');
  if (sel.value === 'off_duty') return;
  const next = ack === 'accepted' || ack === 'arrived' ? 'busy' : 'available';
  if (sel.value !== next) {
    sel.value = next;
    sel.dispatchEvent(new Event('change'));
  }
}

function setButtonsDisabled(b) {
  for (const id of ['btn-accepted', 'btn-declined', 'btn-arrived', 'btn-resolved']) $(id).disabled = b;
}

function hideMessages() {
  $('d-error').hidden = true;
  $('d-ok').hidden = true;
}

// The answer to a button shows in the card; when the card goes away with it (declined,
// resolved, refused) it shows as a toast instead.
function showError(msg) {
  $('d-error').textContent = msg;
  $('d-error').hidden = false;
  if (!state.currentId) flash(msg, 'error');
}

function showOk(msg) {
  $('d-ok').textContent = msg;
  $('d-ok').hidden = false;
  if (!state.currentId) flash(msg, 'ok');
}

function flash(msg, kind) {
  let el = $('flash');
  if (!el) {
    el = h('p', { id: 'flash', class: 'flash', role: 'status', testid: 'flash' });
    document.body.append(el);
  }
  el.textContent = msg;
  el.className = `flash flash-${kind} show`;
  clearTimeout(el._timer);
  el._timer = setTimeout(() => el.classList.remove('show'), 4000);
}

// ───────────────────────── live events ─────────────────────────

function connect() {
  clearTimeout(state.reconnectTimer);
  if (state.es) state.es.close();
  const es = new EventSource('/api/events');
  state.es = es;
  state.ready = false;
  state.picture = true; // until the first `ready` of this EventSource (not after its own reconnects)
  setConn('connecting');
  es.onopen = () => { state.reconnectDelay = 2000; setConn('live'); };
  es.onerror = () => {
    if (es !== state.es) return;
    state.ready = false;
    if (es.readyState === EventSource.CLOSED) {
      setConn('offline');
      clearTimeout(state.reconnectTimer);
      state.reconnectTimer = setTimeout(async () => {
        try { await api.get('/api/me'); } catch (e) { if (e.status === 401) { sessionLost(); return; } }
        state.reconnectDelay = Math.min(state.reconnectDelay * 2, 30000);
        if (state.session) connect();
      }, state.reconnectDelay);
    } else {
      setConn('reconnecting');
    }
  };
  es.addEventListener('alert', (e) => { const d = parse(e); if (d) onAlert(d); });
  es.addEventListener('unit', (e) => { const u = parse(e); if (u) onUnitState(u); });
  es.addEventListener('ack', (e) => {
    // Whatever comes in it, an answer must not break the page.
    try { const a = parse(e); if (a) onAck(a); } catch (err) { console.warn('ack event not used:', err && err.message); }
  });
  es.addEventListener('ready', () => {
    if (es !== state.es) return;
    state.ready = true;
    state.picture = false;
    setConn('live');
    refreshDispatches(); // after a gap, let the server say what is ours now
  });
}

function parse(e) {
  try { return JSON.parse(e.data); } catch { return null; }
}

function setConn(s) {
  state.conn = s;
  const el = $('connection');
  el.dataset.state = s;
  el.className = `conn conn-${s}`;
  $('connection-text').textContent = t(`conn.${s}`);
}

// ───────────────────────── rendering ─────────────────────────

function fact(name, value, cls) {
  return [h('dt', null, name), h('dd', cls ? { class: cls } : null, value)];
}

function render() {
  if (!state.session) { alarm.stop(); return; }
  const doc = state.currentId ? state.docs.get(state.currentId) : null;
  const card = $('dispatch-card');
  card.hidden = !doc;
  $('no-dispatch').hidden = !!doc;
  let ringing = false;

  if (doc) {
    const st = stage(doc);
    const closed = doc.status === 'cleared';
    const takeover = st === 'offered' && !closed;
    ringing = takeover;
    card.dataset.alertId = doc.alert_id;
    card.dataset.stage = st;
    card.className = `dispatch sev-${doc.severity}${takeover ? ' takeover' : ''}${closed ? ' closed' : ''}`;
    document.body.classList.toggle('has-takeover', takeover);

    $('d-banner').textContent = !takeover ? t('unit.new_dispatch')
      : state.reoffered.has(doc.alert_id) || (state.declines[doc.alert_id] && !state.acks[doc.alert_id]) ? t('unit.reoffer')
        : doc.status === 'redispatch' ? t('unit.redispatch') : t('unit.new_dispatch');
    $('d-banner').hidden = !takeover;
    clear($('d-tags')).append(
      h('span', { class: 'tag tag-sev' }, label('severity', doc.severity)),
      h('span', { class: 'tag' }, `${label('kind', doc.kind)} · ${label('subtype', doc.subtype)}`),
      h('span', { class: 'tag tag-time' }, fmtTime(doc.event_ts)));
    $('d-summary').textContent = doc.summary || doc.alert_id;

    const loc = doc.location || {};
    const det = doc.details || {};
    const facts = clear($('d-facts'));
    facts.append(...fact(t('detail.road'), [loc.road_id, loc.road_name].filter(Boolean).join(' ') || '—', 'big'));
    facts.append(...fact(t('detail.direction'), label('direction', loc.direction), 'big'));
    facts.append(...fact(t('detail.stake'), loc.stake || (typeof loc.stake_m === 'number' ? fmtStake(loc.stake_m) : '—'), 'big mono'));
    if (loc.structure) facts.append(...fact(t('detail.structure'), label('structure', loc.structure)));
    if (doc.dispatch) {
      facts.append(...fact(t('detail.eta'), fmtEta(doc.dispatch.eta_s), 'big'));
      facts.append(...fact(t('detail.route'), fmtDistance(doc.dispatch.route_m)));
    }
    if (det.plate) facts.append(...fact(t('detail.plate'), det.plate, 'plate'));
    if (doc.kind === 'severe_weather' && det.advice) facts.append(...fact(t('detail.advice'), det.advice));

    const icp = det.intercept;
    $('d-intercept').hidden = !icp;
    if (icp) {
      $('d-intercept').textContent = t('unit.intercept', {
        name: icp.name || label('intercept', icp.kind),
        road: icp.road_id || '',
        dir: label('direction', icp.direction),
        stake: icp.stake || fmtStake(icp.stake_m),
        d: fmtDistance(icp.distance_m),
      });
    }
    const notes = Array.isArray(doc.notes) ? doc.notes : [];
    $('d-note').hidden = !notes.length;
    if (notes.length) $('d-note').textContent = notes.map((n) => `${n.operator_id}: ${n.text}`).join('\n');

    const ack = state.acks[doc.alert_id];
    // Only an answer asked for after this document came can disown it.
    const disowned = !closed && state.serverCurrent !== undefined && state.serverCurrent !== doc.alert_id
      && state.serverAskedAt > (state.arrivedAt.get(doc.alert_id) || 0);
    $('d-mismatch').hidden = !disowned;
    const conf = state.confirmed.get(doc.alert_id);
    const confirmed = !!ack && !state.sentAcks.has(doc.alert_id) && !!conf && conf.status === ack;
    const stateLine = closed ? t('unit.closed', { outcome: label('outcome', doc.outcome || 'unknown') })
      : !ack ? ''
        : state.sentAcks.has(doc.alert_id) ? t('unit.ack_sent', { state: label('ackdone', ack) })
          : confirmed ? t('unit.ack_confirmed', { state: label('ackdone', ack), time: fmtTime(conf.ts) })
            : t('unit.ack_state', { state: label('ackdone', ack) });
    $('d-state').hidden = !stateLine;
    $('d-state').textContent = stateLine;
    card.dataset.ack = ack || '';
    card.dataset.ackConfirmed = confirmed ? 'true' : 'false';

    // Buttons by stage: offer → accept/decline; accepted → arrived or resolved; arrived → resolved.
    $('btn-accepted').hidden = st !== 'offered' || closed;
    $('btn-declined').hidden = st !== 'offered' || closed;
    $('btn-arrived').hidden = st !== 'accepted' || closed;
    $('resolve-box').hidden = st === 'offered' && !closed;
    const sel = $('resolve-outcome');
    const keep = sel.value;
    clear(sel).append(h('option', { value: '' }, t('unit.outcome.choose')), ...OUTCOMES.map((o) => h('option', { value: o }, label('outcome', o))));
    sel.value = keep;
  } else {
    document.body.classList.remove('has-takeover');
  }

  if (ringing) {
    if (!alarm.active) {
      // A new offer: nothing may cover it.
      const f = $('flash');
      if (f) f.classList.remove('show');
      window.scrollTo(0, 0);
    }
    alarm.start();
  } else {
    alarm.stop();
  }
  $('sound-unlock').hidden = !(ringing && alarm.needsUnlock);
  renderEarlier();
  renderPositionInfo();
}

function renderEarlier() {
  const list = clear($('earlier-list'));
  const items = [...state.docs.values()].filter((d) => d.alert_id !== state.currentId).reverse();
  if (!items.length) {
    list.append(h('li', { class: 'empty' }, t('unit.earlier.empty')));
    return;
  }
  for (const d of items) {
    const ack = state.acks[d.alert_id];
    const tags = [h('span', { class: `tag status-${d.status}` }, label('status', d.status))];
    if (d.outcome) tags.push(h('span', { class: 'tag' }, label('outcome', d.outcome)));
    if (ack) tags.push(h('span', { class: `tag tag-ack ack-${ack}` }, label('ackdone', ack)));
    if (state.reassigned.has(d.alert_id)) tags.push(h('span', { class: 'tag tag-warn' }, t('unit.reassigned')));
    list.append(h('li', { class: `earlier-item sev-${d.severity}`, testid: 'earlier-item', dataset: { alertId: d.alert_id } },
      h('div', { class: 'earlier-top' },
        h('span', { class: 'earlier-time' }, fmtTime(d.event_ts)),
        h('span', { class: 'earlier-kind' }, `${label('severity', d.severity)} · ${label('kind', d.kind)}`)),
      h('div', { class: 'earlier-summary' }, d.summary || d.alert_id),
      h('div', { class: 'earlier-tags' }, tags)));
  }
}

function renderPositionInfo() {
  const el = $('position-info');
  const sharing = $('share-position').checked;
  if (!sharing) {
    el.textContent = t('unit.share.need');
    return;
  }
  if (el.dataset.error) { el.textContent = el.dataset.error; return; }
  el.textContent = state.lastSentMs ? t('unit.share.sent', { time: fmtTime(state.lastSentMs) }) : t('unit.share.on');
}

// ───────────────────────── position ─────────────────────────

async function sendPosition(force) {
  if (!state.position || !state.session) return;
  const now = Date.now();
  if (!force && now - state.lastSentMs < POSITION_MIN_INTERVAL_MS) return;
  state.lastSentMs = now;
  const body = { lon: state.position.lon, lat: state.position.lat, status: $('unit-status').value };
  if (typeof state.position.speed_kmh === 'number') body.speed_kmh = state.position.speed_kmh;
  try {
    await api.post('/api/unit/position', body);
    delete $('position-info').dataset.error;
  } catch (e) {
    if (e.status === 401) { sessionLost(); return; }
    $('position-info').dataset.error = t('unit.failed', { msg: e.message });
  }
  renderPositionInfo();
}

function startSharing() {
  const info = $('position-info');
  delete info.dataset.error;
  if (!('geolocation' in navigator)) {
    info.dataset.error = t('unit.share.unavailable');
    $('share-position').checked = false;
    renderPositionInfo();
    return;
  }
  state.watchId = navigator.geolocation.watchPosition((pos) => {
    const c = pos.coords;
    state.position = {
      lon: c.longitude,
      lat: c.latitude,
      speed_kmh: typeof c.speed === 'number' && Number.isFinite(c.speed) ? Math.round(c.speed * 3.6 * 10) / 10 : undefined,
    };
    delete info.dataset.error;
    sendPosition(false);
  }, (err) => {
    info.dataset.error = t('unit.share.denied', { msg: err.message || err.code });
    renderPositionInfo();
  }, { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 });
  state.keepalive = setInterval(() => sendPosition(true), POSITION_KEEPALIVE_MS);
  renderPositionInfo();
}

function stopSharing() {
  if (state.watchId !== null && navigator.geolocation) navigator.geolocation.clearWatch(state.watchId);
  state.watchId = null;
  clearInterval(state.keepalive);
  state.keepalive = null;
  state.position = null;
  state.lastSentMs = 0;
  $('share-position').checked = false;
  renderPositionInfo();
}

// ───────────────────────── wiring ─────────────────────────

function wire() {
  $('login-form').addEventListener('submit', onLogin);
  for (const b of document.querySelectorAll('.lang-toggle')) b.addEventListener('click', toggleLang);
  $('logout').addEventListener('click', logout);
  $('btn-accepted').addEventListener('click', () => sendAck('accepted'));
  $('btn-declined').addEventListener('click', () => sendAck('declined'));
  $('btn-arrived').addEventListener('click', () => sendAck('arrived'));
  $('btn-resolved').addEventListener('click', () => sendAck('resolved'));
  $('resolve-outcome').addEventListener('change', hideMessages);
  $('sound-unlock').addEventListener('click', () => { alarm.unlock(); setTimeout(render, 150); });
  $('share-position').addEventListener('change', (e) => (e.target.checked ? startSharing() : stopSharing()));
  $('unit-status').addEventListener('change', (e) => {
    try { localStorage.setItem(`rw.unit.${state.session.unit_id}.status`, e.target.value); } catch { /* ignore */ }
    sendPosition(true);
  });
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') keepAwake(); });
  onLangChange(() => { if (state.session) { setConn(state.conn); render(); } });
  // Re-check every second whether the browser allows sound yet.
  setInterval(() => { if (state.session && alarm.active) $('sound-unlock').hidden = !alarm.needsUnlock; }, 1000);
}

boot();
