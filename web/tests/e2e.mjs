// Real-browser end-to-end test of the console (/) and the patrol-unit app (/unit),
// driven by a Rust integration test over a line protocol:
//
//   stdout (protocol lines only)      stdin (from the harness)
//   READY                             GO
//   ALERT <alert_id> <ms GO→shown>
//   ASSIGNED
//   RESOLVED
//   ACCESS_OK
//   RESTART                           RESTARTED
//   RECONNECTED <second alert_id>
//   DONE                              (exit 0)
//   FAIL <reason>                     (at any point; exit 1)
//
// Everything else (progress, diagnostics, the pages' console) goes to stderr.
//
// Run from the repository root: node web/tests/e2e.mjs
// Environment: RW_BASE, RW_OPERATOR, RW_PASSWORD, RW_UNIT, RW_TOKEN (the unit the
// operator assigns), RW_OTHER_UNIT, RW_OTHER_TOKEN (another unit), RW_SHOTS (optional
// directory for screenshots).
//
// The checks read what the pages show, through their data-testid hooks
// (web/README.md) and the pages' own i18n module (so they hold in either language).

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const UI_MS = 10_000;       // any wait for the pages
const STDIN_MS = 60_000;    // waiting for GO / RESTARTED
const WATCHDOG_MS = 400_000; // the whole run, whatever happens
const SETTLE_MS = 1_500;    // after the reconnection, for late replays to show

const LAUNCH = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
};

// ───────────────────────── output ─────────────────────────

const t0 = Date.now();

function log(...args) {
  const s = ((Date.now() - t0) / 1000).toFixed(3).padStart(8);
  console.error(`[e2e ${s}s]`, ...args);
}

/** One protocol line on stdout (the only thing ever written there). */
function say(line) {
  log(`>> ${line}`);
  try { process.stdout.write(`${line}\n`); } catch { /* the harness went away */ }
}
process.stdout.on('error', () => { /* EPIPE: the harness went away; stderr still tells */ });

class Fail extends Error {}

function fail(reason, detail) {
  const e = new Fail(reason);
  if (detail !== undefined) e.detail = detail;
  throw e;
}

// ───────────────────────── configuration ─────────────────────────

function config() {
  const need = ['RW_BASE', 'RW_OPERATOR', 'RW_PASSWORD', 'RW_UNIT', 'RW_TOKEN', 'RW_OTHER_UNIT', 'RW_OTHER_TOKEN'];
  const missing = need.filter((k) => !process.env[k]);
  if (missing.length) fail(`missing environment: ${missing.join(' ')}`);
  const base = process.env.RW_BASE.replace(/\/+$/, '');
  try { new URL(base); } catch { fail(`RW_BASE is not a URL: ${base}`); }
  if (process.env.RW_UNIT === process.env.RW_OTHER_UNIT) fail('RW_UNIT and RW_OTHER_UNIT must differ');
  return {
    base,
    operator: process.env.RW_OPERATOR,
    password: process.env.RW_PASSWORD,
    unit: process.env.RW_UNIT,
    token: process.env.RW_TOKEN,
    otherUnit: process.env.RW_OTHER_UNIT,
    otherToken: process.env.RW_OTHER_TOKEN,
    shots: process.env.RW_SHOTS || null,
  };
}

// ───────────────────────── stdin ─────────────────────────

const stdin = { queue: [], waiter: null, closed: false, rl: null };

function openStdin() {
  stdin.rl = createInterface({ input: process.stdin, terminal: false });
  stdin.rl.on('line', (text) => {
    const line = { text: text.trim(), at: Date.now() };
    log(`<< ${line.text}`);
    if (stdin.waiter) { const w = stdin.waiter; stdin.waiter = null; w(line); } else stdin.queue.push(line);
  });
  stdin.rl.on('close', () => {
    stdin.closed = true;
    if (stdin.waiter) { const w = stdin.waiter; stdin.waiter = null; w(null); }
  });
}

function nextLine(ms) {
  if (stdin.queue.length) return Promise.resolve(stdin.queue.shift());
  if (stdin.closed) return Promise.resolve(null);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { stdin.waiter = null; resolve(undefined); }, ms);
    stdin.waiter = (line) => { clearTimeout(timer); resolve(line); };
  });
}

/** Waits for the stdin line `word`; returns when it was read (ms since the epoch). */
async function expectLine(word, ms = STDIN_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    const line = left > 0 ? await nextLine(left) : undefined;
    if (line === undefined) fail(`no ${word} on stdin within ${ms / 1000} s`);
    if (line === null) fail(`stdin closed while waiting for ${word}`);
    if (line.text === word) return line.at;
    if (line.text) log(`ignoring unexpected stdin line ${JSON.stringify(line.text)} (waiting for ${word})`);
  }
}

// ───────────────────────── pages ─────────────────────────

const diag = { pageErrors: [], consoleTail: [] };

function watch(page, name) {
  page.on('pageerror', (e) => {
    diag.pageErrors.push(`${name}: ${e.message}`);
    log(`[${name}] uncaught: ${e.stack || e.message}`);
  });
  page.on('console', (m) => {
    const line = `[${name}] console.${m.type()}: ${m.text()}`;
    diag.consoleTail.push(line);
    if (diag.consoleTail.length > 40) diag.consoleTail.shift();
    if (m.type() === 'error' || m.type() === 'warning') log(line);
  });
  page.on('requestfailed', (r) => {
    // An EventSource torn down by a reload or a restart is expected; log it all the same.
    log(`[${name}] request failed: ${r.method()} ${r.url()} ${r.failure() ? r.failure().errorText : ''}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) log(`[${name}] HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('close', () => log(`[${name}] page closed`));
}

function noPageErrors(step) {
  if (diag.pageErrors.length) fail(`uncaught error in a page during ${step}: ${diag.pageErrors[0]}`);
}

/**
 * page.waitForFunction with a readable failure. The predicate runs in the page and
 * returns a falsy value (keep waiting), {error} (give up at once: the page showed an
 * error) or any other truthy value (done, returned).
 */
async function until(page, what, predicate, arg, ms = UI_MS) {
  let handle;
  try {
    handle = await page.waitForFunction(predicate, arg, { polling: 'raf', timeout: ms });
  } catch (e) {
    if (/Timeout/i.test(e.message)) fail(`timed out after ${ms / 1000} s waiting for ${what}`);
    throw e;
  }
  const v = await handle.jsonValue();
  await handle.dispose();
  if (v && typeof v === 'object' && typeof v.error === 'string') fail(`${what}: the page says ${JSON.stringify(v.error)}`);
  return v;
}

/** A value inside a CSS attribute selector's double quotes. */
function cssq(v) {
  return String(v).replace(/["\\]/g, '\\$&');
}

/** In a page: the i18n module the page itself uses (same module instance). */
async function loadI18n(page) {
  await page.evaluate(async () => { window.__rwI18n = await import('/static/common/i18n.js'); });
}

async function i18n(page, key, params) {
  return page.evaluate(([k, p]) => window.__rwI18n.t(k, p), [key, params]);
}

async function labelOf(page, group, value) {
  return page.evaluate(([g, v]) => window.__rwI18n.label(g, v), [group, value]);
}

/** Snapshot of a page's state for failure reports. */
async function pageState(page) {
  if (!page || page.isClosed()) return 'closed';
  try {
    return await page.evaluate(() => {
      const ids = (sel) => [...document.querySelectorAll(sel)].map((e) => e.dataset.alertId);
      const txt = (sel) => { const e = document.querySelector(sel); return e ? e.textContent.trim().slice(0, 300) : null; };
      const conn = document.querySelector('[data-testid=connection]');
      return {
        url: location.href,
        connection: conn ? conn.dataset.state : null,
        queue: ids('[data-testid=alert-item]'),
        closed: ids('[data-testid=closed-item]'),
        detail: document.querySelector('[data-testid=alert-detail]')?.dataset.alertId ?? null,
        actionError: txt('[data-testid=action-error]:not([hidden])'),
        card: document.querySelector('[data-testid=dispatch-card]:not([hidden])')?.dataset ?? null,
        dispatchError: txt('[data-testid=dispatch-error]:not([hidden])'),
        earlier: ids('[data-testid=earlier-item]'),
        loginError: txt('[data-testid=login-error]:not([hidden]), [data-testid=unit-login-error]:not([hidden])'),
        roads: document.querySelectorAll('.rw-road').length,
      };
    });
  } catch (e) {
    return `unavailable: ${e.message}`;
  }
}

// ───────────────────────── steps ─────────────────────────

async function signInOperator(page, cfg) {
  await page.goto(`${cfg.base}/`, { waitUntil: 'domcontentloaded', timeout: UI_MS });
  await page.getByTestId('login-user').waitFor({ state: 'visible', timeout: UI_MS });
  await page.getByTestId('login-user').fill(cfg.operator);
  await page.getByTestId('login-password').fill(cfg.password);
  await page.getByTestId('login-submit').click();
  await until(page, 'the console after signing in', () => {
    const err = document.querySelector('[data-testid=login-error]');
    if (err && !err.hidden && err.textContent.trim()) return { error: err.textContent.trim() };
    return !document.getElementById('app').hidden && document.getElementById('login').hidden;
  });
  await loadI18n(page);
  // Marks this document: a reload would lose it (step 6 checks it is still there).
  await page.evaluate(() => {
    window.__rwSameDocument = true;
    // Every state the connection indicator goes through, with when.
    const el = document.querySelector('[data-testid=connection]');
    window.__rwConn = [{ state: el.dataset.state, at: Date.now() }];
    new MutationObserver(() => {
      const last = window.__rwConn[window.__rwConn.length - 1];
      if (last.state !== el.dataset.state) window.__rwConn.push({ state: el.dataset.state, at: Date.now() });
    }).observe(el, { attributes: true, attributeFilter: ['data-state'] });
  });
}

async function checkMap(page) {
  const roads = await until(page, 'the road network drawn on the map (.rw-road elements)', () => {
    const map = document.querySelector('[data-testid=map]').getBoundingClientRect();
    if (map.width < 100 || map.height < 100) return false;
    const els = [...document.querySelectorAll('.rw-road')];
    // Drawn, not just created: at least one has a size and lies on the map.
    const drawn = els.filter((e) => {
      const r = e.getBoundingClientRect();
      return (r.width > 0 || r.height > 0) && r.right > map.left && r.left < map.right && r.bottom > map.top && r.top < map.bottom;
    });
    return drawn.length ? { total: els.length, drawn: drawn.length, map: [Math.round(map.width), Math.round(map.height)] } : false;
  });
  log(`map: ${roads.total} road features (${roads.drawn} within the ${roads.map.join('x')} map)`);
  await until(page, 'the console\'s live connection', () => document.querySelector('[data-testid=connection]').dataset.state === 'live');
  await checkStations(page);
  return roads.total;
}

/** Every weather station of GET /api/stations (if any reported) has its marker on the map. */
async function checkStations(page) {
  const ids = await page.evaluate(async () => {
    const r = await fetch('/api/stations');
    if (!r.ok) return { error: `GET /api/stations answered ${r.status}` };
    const list = await r.json();
    return Array.isArray(list) ? list.filter((o) => o && typeof o.station_id === 'string' && o.station_id
      && Number.isFinite(o.lon) && Number.isFinite(o.lat) && Math.abs(o.lon) <= 180 && Math.abs(o.lat) <= 90).map((o) => o.station_id) : [];
  });
  if (ids.error) fail(ids.error);
  if (!ids.length) { log('map: no weather station has reported (GET /api/stations is empty)'); return; }
  await until(page, `a marker for each of the ${ids.length} weather stations of GET /api/stations`, (want) => {
    const have = new Set([...document.querySelectorAll('[data-testid=station-marker]')].map((e) => e.dataset.stationId));
    return want.every((id) => have.has(id));
  }, ids);
  log(`map: ${ids.length} weather station markers`);
}

async function openIds(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-testid=alert-item]')].map((e) => e.dataset.alertId));
}

async function knownIds(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-testid=alert-item], [data-testid=closed-item]')].map((e) => e.dataset.alertId));
}

/** Step 2: the pedestrian alert in a tunnel, new since GO, in the queue and on the map. */
async function waitForPedestrianAlert(page, before) {
  const found = await page.waitForFunction((known) => {
    const I = window.__rwI18n;
    const kind = I.label('kind', 'pedestrian');
    const tunnel = `· ${I.label('structure', 'tunnel')}`;
    const map = document.querySelector('[data-testid=map]').getBoundingClientRect();
    for (const li of document.querySelectorAll('[data-testid=alert-item]')) {
      const id = li.dataset.alertId;
      if (known.includes(id)) continue;
      if (!(li.querySelector('.ai-kind')?.textContent || '').startsWith(kind)) continue;
      if (!(li.querySelector('.ai-place')?.textContent || '').includes(tunnel)) continue;
      const marker = [...document.querySelectorAll('.rw-alert')].find((m) => m.dataset.alertId === id);
      if (!marker) continue;
      const r = marker.getBoundingClientRect();
      const onMap = r.width > 0 && r.right > map.left && r.left < map.right && r.bottom > map.top && r.top < map.bottom;
      if (!onMap) continue;
      return { id, at: Date.now() };
    }
    return null;
  }, before, { polling: 'raf', timeout: UI_MS }).then(async (h) => { const v = await h.jsonValue(); await h.dispose(); return v; }, async (e) => {
    if (!/Timeout/i.test(e.message)) throw e;
    const seen = await page.evaluate((known) => [...document.querySelectorAll('[data-testid=alert-item]')]
      .filter((li) => !known.includes(li.dataset.alertId))
      .map((li) => ({
        id: li.dataset.alertId,
        kind: li.querySelector('.ai-kind')?.textContent,
        place: li.querySelector('.ai-place')?.textContent,
        marker: [...document.querySelectorAll('.rw-alert')].some((m) => m.dataset.alertId === li.dataset.alertId),
      })), before);
    fail(`no new pedestrian alert in a tunnel shown in the queue and on the map within ${UI_MS / 1000} s of GO`
      + ` (new in the queue: ${seen.length ? JSON.stringify(seen) : 'none'})`);
  });
  return found;
}

async function acknowledge(page, id) {
  await page.locator(`[data-testid=alert-item][data-alert-id="${cssq(id)}"]`).click({ timeout: UI_MS });
  await until(page, `the detail of ${id}`, (aid) => {
    const panel = document.querySelector('[data-testid=alert-detail]');
    return !!panel && panel.dataset.alertId === aid && !document.getElementById('detail-content').hidden
      && !document.querySelector('[data-testid=btn-acknowledge]').hidden;
  }, id);
  const btn = page.getByTestId('btn-acknowledge');
  if (await btn.isDisabled()) fail(`the acknowledge button of ${id} is disabled before acknowledging`);
  const before = await page.getByTestId('timeline-item').count();
  const op = (await page.getByTestId('operator').textContent()).trim();
  const ackLine = `${await i18n(page, 'detail.acknowledged')}: ${(await i18n(page, 'detail.acknowledged_by', { op, time: '\u0000' })).split('\u0000')[0]}`;
  await btn.click({ timeout: UI_MS });
  await until(page, `the acknowledgement of ${id} in its timeline`, ([aid, n, line]) => {
    const err = document.querySelector('[data-testid=action-error]');
    if (err && !err.hidden && err.textContent.trim()) return { error: err.textContent.trim() };
    const panel = document.querySelector('[data-testid=alert-detail]');
    if (!panel || panel.dataset.alertId !== aid) return { error: `the detail shows ${panel && panel.dataset.alertId} instead` };
    const items = [...document.querySelectorAll('[data-testid=timeline-item]')];
    return items.length > n && items.slice(n).some((li) => li.textContent.includes(line));
  }, [id, before, ackLine]);
  log(`acknowledged ${id} (timeline: ${before} → ${await page.getByTestId('timeline-item').count()} documents)`);
  return op;
}

async function assign(page, id, unit, op) {
  const before = await page.getByTestId('timeline-item').count();
  await page.getByTestId('btn-assign').click({ timeout: UI_MS });
  const cand = page.locator(`[data-testid=candidate-item][data-unit-id="${cssq(unit)}"]`);
  try {
    await cand.waitFor({ state: 'visible', timeout: UI_MS });
  } catch {
    const listed = await page.locator('[data-testid=candidate-item]').evaluateAll((els) => els.map((e) => e.dataset.unitId));
    const hint = await page.locator('#candidates-hint').textContent().catch(() => '');
    fail(`${unit} is not among the candidates of ${id} (listed: ${listed.join(' ') || 'none'}; ${hint.trim()})`);
  }
  await cand.click({ timeout: UI_MS });
  const labels = { dispatch: await i18n(page, 'detail.dispatch'), by: await i18n(page, 'detail.assigned_by', { op }) };
  await until(page, `${unit} shown as the unit assigned to ${id}`, ([aid, u, n, l]) => {
    const err = document.querySelector('[data-testid=action-error]');
    if (err && !err.hidden && err.textContent.trim()) return { error: err.textContent.trim() };
    const panel = document.querySelector('[data-testid=alert-detail]');
    if (!panel || panel.dataset.alertId !== aid) return { error: `the detail shows ${panel && panel.dataset.alertId} instead` };
    // A new document came back (the redispatch) …
    if (document.querySelectorAll('[data-testid=timeline-item]').length <= n) return false;
    // … and the detail's dispatch row names the unit, assigned by this operator …
    const dt = [...panel.querySelectorAll('dl.kv dt')].find((e) => e.textContent === l.dispatch);
    const dd = dt && dt.nextElementSibling;
    if (!dd || !dd.querySelector('b') || dd.querySelector('b').textContent !== u || !dd.textContent.includes(l.by)) return false;
    // … as does the queue.
    const li = [...document.querySelectorAll('[data-testid=alert-item]')].find((e) => e.dataset.alertId === aid);
    return !!li && li.querySelector('.badge-unit')?.textContent === u;
  }, [id, unit, before, labels]);
  log(`assigned ${unit} to ${id}`);
}

async function signInUnit(page, cfg) {
  await page.goto(`${cfg.base}/unit`, { waitUntil: 'domcontentloaded', timeout: UI_MS });
  await page.getByTestId('unit-login-id').waitFor({ state: 'visible', timeout: UI_MS });
  await page.getByTestId('unit-login-id').fill(cfg.unit);
  await page.getByTestId('unit-login-token').fill(cfg.token);
  await page.getByTestId('unit-login-submit').click();
  await until(page, `the unit app signed in as ${cfg.unit}`, (u) => {
    const err = document.querySelector('[data-testid=unit-login-error]');
    if (err && !err.hidden && err.textContent.trim()) return { error: err.textContent.trim() };
    return !document.getElementById('app').hidden && document.querySelector('[data-testid=unit-id]').textContent === u;
  }, cfg.unit);
  await loadI18n(page);
}

/** The unit's answer `status` in the console's detail timeline of `id` (an `ack` event). */
async function waitForTimelineAck(page, id, unit, status) {
  await until(page, `${unit}'s answer "${status}" to ${id} in the console's detail timeline`, ([aid, u, st]) => {
    const panel = document.querySelector('[data-testid=alert-detail]');
    if (!panel || panel.dataset.alertId !== aid) return { error: `the detail shows ${panel && panel.dataset.alertId} instead` };
    return [...document.querySelectorAll('#timeline [data-testid=timeline-ack]')]
      .some((li) => li.dataset.status === st && li.dataset.unitId === u);
  }, [id, unit, status]);
  log(`${id}: the console's timeline shows ${unit} ${status}`);
}

async function answerDispatch(page, id, wantShot, opPage, unit) {
  const card = `[data-testid=dispatch-card][data-alert-id="${cssq(id)}"]`;
  const cover = await until(page, `the full-screen dispatch card of ${id}`, (sel) => {
    const el = document.querySelector(sel);
    if (!el || el.hidden || !el.classList.contains('takeover')) return false;
    const r = el.getBoundingClientRect();
    return { w: r.width, h: r.height, vw: window.innerWidth, vh: window.innerHeight, top: r.top, left: r.left };
  }, card);
  if (cover.top > 0 || cover.left > 0 || cover.w < cover.vw - 1 || cover.h < cover.vh - 1) {
    fail(`the dispatch card of ${id} does not cover the screen (${JSON.stringify(cover)})`);
  }
  const shot = wantShot ? await page.screenshot().catch(() => null) : null; // saved in step 7
  await page.locator(`${card} [data-testid=btn-accepted]`).click({ timeout: UI_MS });
  await until(page, `the card of ${id} at the accepted stage`, (sel) => {
    const err = document.querySelector('[data-testid=dispatch-error]');
    if (err && !err.hidden && err.textContent.trim()) return { error: err.textContent.trim() };
    const el = document.querySelector(sel);
    return !!el && !el.hidden && el.dataset.stage === 'accepted' && !el.classList.contains('takeover')
      && !document.getElementById('resolve-box').hidden;
  }, card);
  log(`${id}: accepted on the unit app`);
  await waitForTimelineAck(opPage, id, unit, 'accepted');
  await page.locator(`${card} [data-testid=resolve-outcome]`).selectOption('false_alarm', { timeout: UI_MS });
  await page.locator(`${card} [data-testid=btn-resolved]`).click({ timeout: UI_MS });
  await until(page, `the unit app taking the resolved answer for ${id}`, (aid) => {
    const flash = document.querySelector('[data-testid=flash]');
    if (flash && flash.classList.contains('flash-error') && flash.classList.contains('show')) return { error: flash.textContent };
    const err = document.querySelector('[data-testid=dispatch-error]');
    if (err && !err.hidden && err.textContent.trim()) return { error: err.textContent.trim() };
    const li = [...document.querySelectorAll('[data-testid=earlier-item]')].find((e) => e.dataset.alertId === aid);
    return !!li && !!li.querySelector('.tag-ack.ack-resolved');
  }, id);
  log(`${id}: resolved (false_alarm) on the unit app`);
  await waitForTimelineAck(opPage, id, unit, 'resolved');
  return shot;
}

async function waitForCleared(page, id) {
  const outcome = await labelOf(page, 'outcome', 'false_alarm');
  await until(page, `${id} leaving the open queue, closed with outcome ${outcome}`, ([aid, o]) => {
    if ([...document.querySelectorAll('[data-testid=alert-item]')].some((e) => e.dataset.alertId === aid)) return false;
    const li = [...document.querySelectorAll('[data-testid=closed-item]')].find((e) => e.dataset.alertId === aid);
    if (!li || li.dataset.status !== 'cleared') return false;
    if (![...li.querySelectorAll('.ai-badges .badge')].some((b) => b.textContent === o)) return false;
    // The detail, still open, says so too.
    const panel = document.querySelector('[data-testid=alert-detail]');
    if (panel.dataset.alertId === aid) {
      const closed = panel.querySelector('.detail-closed');
      if (!closed || !closed.textContent.includes(o)) return false;
    }
    return true;
  }, [id, outcome]);
  log(`${id}: cleared in the console, outcome ${outcome}`);
}

/** fetch from Node (no browser, no cookie jar), with a timeout and a failure naming the request. */
async function request(cfg, method, urlPath, { headers = {}, body } = {}) {
  try {
    return await fetch(`${cfg.base}${urlPath}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(UI_MS),
    });
  } catch (e) {
    return fail(`${method} ${urlPath} from Node failed: ${(e.cause && e.cause.message) || e.message}`);
  }
}

async function accessChecks(cfg, alertId) {
  // (a) no cookie at all
  const anon = await request(cfg, 'GET', '/api/alerts');
  if (anon.status !== 401) fail(`GET /api/alerts without a session answered ${anon.status}, not 401`);
  log('GET /api/alerts without a session: 401');
  // (b) another unit acking an alert that is not its own
  const login = await request(cfg, 'POST', '/api/login', {
    headers: { 'Content-Type': 'application/json' },
    body: { unit_id: cfg.otherUnit, token: cfg.otherToken },
  });
  const me = await login.json().catch(() => null);
  if (login.status !== 200 || !me || me.role !== 'unit' || me.unit_id !== cfg.otherUnit || !me.csrf) {
    fail(`signing in as ${cfg.otherUnit} answered ${login.status} ${JSON.stringify(me)}`);
  }
  const cookies = (login.headers.getSetCookie ? login.headers.getSetCookie() : [login.headers.get('set-cookie') || ''])
    .map((c) => c.split(';')[0].trim())
    .filter((c) => c.startsWith('rw_session='));
  if (!cookies.length) fail(`signing in as ${cfg.otherUnit} set no rw_session cookie`);
  const ack = await request(cfg, 'POST', '/api/unit/ack', {
    headers: { 'Content-Type': 'application/json', Cookie: cookies[0], 'X-CSRF-Token': me.csrf },
    body: { alert_id: alertId, status: 'accepted' },
  });
  const body = await ack.text();
  if (ack.status !== 403) fail(`${cfg.otherUnit} acking ${alertId} answered ${ack.status} ${body.slice(0, 200)}, not 403`);
  // 403 is also the answer to a bad CSRF token: make sure it is the alert that was refused.
  if (/csrf/i.test(body)) fail(`${cfg.otherUnit}'s ack was refused for its CSRF token, not for the alert: ${body.slice(0, 200)}`);
  log(`${cfg.otherUnit} acking ${alertId}: 403 ${body.slice(0, 200)}`);
  await request(cfg, 'POST', '/api/logout', { headers: { Cookie: cookies[0], 'X-CSRF-Token': me.csrf } }).catch(() => {});
}

async function waitForReconnect(page, firstId, openBefore, restartAt) {
  const got = await until(page, 'the console connected again with a second alert in the queue', ([first, before, since]) => {
    if (!window.__rwSameDocument) return { error: 'the page was reloaded' };
    const el = document.querySelector('[data-testid=connection]');
    if (el.dataset.state !== 'live') return false;
    const dropped = window.__rwConn.some((c) => c.at >= since && c.state !== 'live');
    const ids = [...document.querySelectorAll('[data-testid=alert-item]')].map((e) => e.dataset.alertId);
    const second = ids.find((id) => id !== first && !before.includes(id));
    if (!second) return false;
    if (!dropped) return { error: 'a second alert came but the connection indicator never left "live" while the server was down' };
    return { second, states: window.__rwConn.filter((c) => c.at >= since).map((c) => c.state) };
  }, [firstId, openBefore, restartAt]);
  log(`reconnected; the indicator went ${got.states.join(' → ')}; second alert ${got.second}`);
  // Late replays: give them a moment, then the first alert must still be closed.
  await page.waitForTimeout(SETTLE_MS);
  const st = await page.evaluate((first) => ({
    same: !!window.__rwSameDocument,
    conn: document.querySelector('[data-testid=connection]').dataset.state,
    reopened: [...document.querySelectorAll('[data-testid=alert-item]')].some((e) => e.dataset.alertId === first),
  }), firstId);
  if (!st.same) fail('the console page was reloaded');
  if (st.reopened) fail(`the first alert ${firstId} reappeared in the open queue after the restart`);
  if (st.conn !== 'live') fail(`the connection indicator fell back to ${st.conn} after reconnecting`);
  return got.second;
}

// ───────────────────────── main ─────────────────────────

const run = { browser: null, op: null, unit: null, cfg: null, unitShot: null };

async function main() {
  const cfg = config();
  run.cfg = cfg;
  openStdin();
  log(`base ${cfg.base}; operator ${cfg.operator}; unit ${cfg.unit}; other unit ${cfg.otherUnit}; shots ${cfg.shots || '-'}`);

  run.browser = await chromium.launch(LAUNCH);
  run.browser.on('disconnected', () => log('browser disconnected'));

  // 1. the console, signed in, its map drawn
  const opCtx = await run.browser.newContext({ viewport: { width: 1440, height: 900 } });
  opCtx.setDefaultTimeout(UI_MS);
  run.op = await opCtx.newPage();
  watch(run.op, 'console');
  await signInOperator(run.op, cfg);
  const roads = await checkMap(run.op);
  noPageErrors('sign-in');
  log(`signed in as ${cfg.operator}; ${roads} road features drawn`);
  // Taken before READY: the harness may raise the alert as soon as it reads READY.
  const before = await knownIds(run.op);
  say('READY');

  // 2. GO: the pedestrian alert in a tunnel, in the queue and on the map
  const goAt = await expectLine('GO');
  const found = await waitForPedestrianAlert(run.op, before);
  const alertId = found.id;
  noPageErrors('the alert');
  say(`ALERT ${alertId} ${Math.max(0, found.at - goAt)}`);

  // 3. acknowledge, then assign RW_UNIT
  const op = await acknowledge(run.op, alertId);
  await assign(run.op, alertId, cfg.unit, op);
  noPageErrors('acknowledge and assign');
  say('ASSIGNED');

  // 4. the unit answers on its phone; the console sees the alert end
  const unitCtx = await run.browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  unitCtx.setDefaultTimeout(UI_MS);
  run.unit = await unitCtx.newPage();
  watch(run.unit, 'unit');
  await signInUnit(run.unit, cfg);
  run.unitShot = await answerDispatch(run.unit, alertId, !!cfg.shots, run.op, cfg.unit);
  await waitForCleared(run.op, alertId);
  noPageErrors('the unit\'s answer');
  say('RESOLVED');

  // 5. access checks, from outside the browser
  await accessChecks(cfg, alertId);
  say('ACCESS_OK');

  // 6. the server restarts under the page
  const openBefore = await openIds(run.op);
  const restartAt = Date.now();
  say('RESTART');
  await expectLine('RESTARTED');
  const second = await waitForReconnect(run.op, alertId, openBefore, restartAt);
  noPageErrors('the restart');
  say(`RECONNECTED ${second}`);

  // 7. screenshots
  if (cfg.shots) {
    await mkdir(cfg.shots, { recursive: true });
    await run.op.screenshot({ path: path.join(cfg.shots, 'console.png') });
    await run.unit.screenshot({ path: path.join(cfg.shots, 'unit.png') });
    if (run.unitShot) await writeFile(path.join(cfg.shots, 'unit-dispatch.png'), run.unitShot);
    log(`screenshots in ${cfg.shots}`);
  }
  say('DONE');
}

async function failureShots() {
  if (!run.cfg || !run.cfg.shots) return;
  try {
    await mkdir(run.cfg.shots, { recursive: true });
    for (const [page, name] of [[run.op, 'fail-console.png'], [run.unit, 'fail-unit.png']]) {
      if (page && !page.isClosed()) await page.screenshot({ path: path.join(run.cfg.shots, name), timeout: 5000 }).catch(() => {});
    }
  } catch { /* best effort */ }
}

async function closeBrowser() {
  if (!run.browser) return;
  const b = run.browser;
  run.browser = null;
  await Promise.race([b.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
}

let finished = false;

async function finish(code) {
  if (finished) return;
  finished = true;
  await closeBrowser();
  if (stdin.rl) stdin.rl.close();
  process.stdin.destroy();
  // stdout is a pipe (synchronous on Linux) or a file: nothing is left unwritten.
  process.exit(code);
}

async function failed(e) {
  // One line: no colours, no Playwright call log (stderr has the whole message).
  const reason = (e && e.message ? e.message : String(e))
    .replace(/\u001b\[[0-9;]*m/g, '').split(/\n\s*Call log:/)[0]
    .replace(/\s+/g, ' ').trim().slice(0, 500) || 'unknown error';
  say(`FAIL ${reason}`);
  log(`FAILED: ${e && e.stack ? e.stack : e}`);
  if (e && e.detail !== undefined) log('detail:', e.detail);
  if (diag.pageErrors.length) log('uncaught errors in the pages:', diag.pageErrors);
  log('console page:', JSON.stringify(await pageState(run.op)));
  log('unit page:', JSON.stringify(await pageState(run.unit)));
  if (diag.consoleTail.length) log(`last page console lines:\n  ${diag.consoleTail.join('\n  ')}`);
  await failureShots();
}

const watchdog = setTimeout(async () => {
  await failed(new Fail(`the whole run took longer than ${WATCHDOG_MS / 1000} s`));
  await finish(1);
}, WATCHDOG_MS);

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, async () => {
    clearTimeout(watchdog);
    if (finished) return;
    await failed(new Fail(`stopped by ${sig}`));
    await finish(1);
  });
}

(async () => {
  let code = 0;
  try {
    await main();
  } catch (e) {
    code = 1;
    await failed(e);
  } finally {
    clearTimeout(watchdog);
    await finish(code);
  }
})();
