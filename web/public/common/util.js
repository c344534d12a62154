// Small helpers shared by both pages: DOM building (text is always set as text, never
// parsed as HTML: summaries and notes come from the outside), time, stake and distance
// formatting.

import { t } from '/static/common/i18n.js';

/**
 * Build an element: h('div', {class: 'x', dataset: {alertId: id}, onclick: f}, child, …).
 * Children may be strings, nodes, arrays, or null/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'testid') el.dataset.testid = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const SEVERITIES = ['info', 'warning', 'severe', 'critical'];

/** 0 (info) … 3 (critical); -1 for an unknown severity. */
export function severityRank(s) {
  return SEVERITIES.indexOf(s);
}

/** Milliseconds since the epoch of a contract timestamp (RFC 3339 or integer ms). */
export function tsMillis(ts) {
  if (typeof ts === 'number') return ts;
  if (typeof ts === 'string') {
    if (/^\d+$/.test(ts)) return Number(ts);
    const ms = Date.parse(ts);
    if (!Number.isNaN(ms)) return ms;
  }
  return NaN;
}

function pad(n, w = 2) {
  return String(n).padStart(w, '0');
}

/** "21:15:30" today, "11-28 21:15:30" on another day (local time of the browser). */
export function fmtTime(ts) {
  const ms = tsMillis(ts);
  if (Number.isNaN(ms)) return '—';
  const d = new Date(ms);
  const now = new Date();
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return sameDay ? hms : `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms}`;
}

/** "3 分钟前" / "3 min ago". */
export function fmtAge(ts, nowMs = Date.now()) {
  const ms = tsMillis(ts);
  if (Number.isNaN(ms)) return '';
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 10) return t('age.now');
  if (s < 60) return t('age.s', { n: s });
  if (s < 3600) return t('age.min', { n: Math.floor(s / 60) });
  return t('age.h', { n: Math.floor(s / 3600) });
}

/** Seconds as "4 分 05 秒" / "4 min 05 s". */
export function fmtEta(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '—';
  const total = Math.max(0, Math.round(s));
  const m = Math.floor(total / 60);
  const sec = total % 60;
  return m > 0 ? t('eta.min', { m, s: pad(sec) }) : t('eta.sec', { s: sec });
}

/** Metres as "850 米" or "12.3 公里". */
export function fmtDistance(m) {
  if (typeof m !== 'number' || !Number.isFinite(m)) return '—';
  if (Math.abs(m) < 1000) return t('m', { n: Math.round(m) });
  return t('km', { n: (m / 1000).toFixed(1) });
}

/** A stake in metres as "K1203+450" (the contract's notation). */
export function fmtStake(m) {
  if (typeof m !== 'number' || !Number.isFinite(m)) return '—';
  const r = Math.round(m);
  return `K${Math.floor(r / 1000)}+${pad(r % 1000, 3)}`;
}

/** A confidence 0..1 as a percentage. */
export function fmtPercent(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '—';
  return `${Math.round(x * 100)}%`;
}
