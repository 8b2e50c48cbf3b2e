// socklab dashboard view: the selected session's chart, bytes per second up and down over
// the last minute. It is filled from the server's stored history (GET /api/rates?session=)
// when a session is selected, so a reloaded page shows the last minute at once, and again
// shortly after (the store writes a moment behind the live stream). In between, the
// session's live data events add to it; the frame scheduler redraws it.

import { api } from './api.js';
import { clearedCanvas, schedule } from './frame.js';
import { $, CHART_SECONDS, fmtBytes, log } from './state.js';

/** A second refill this long after the first picks up what the store had not written yet. */
export const SESSION_CHART_SETTLE_MS = 2500;
/** Seconds at the end of an answer that may still be on their way to the store. */
const UNSETTLED_SECONDS = 2;

/** Bytes per second of the selected session, a ring by (server) second. */
const ring = {
  sid: null,
  /** `log.gen` when the ring was filled: a new selection (or a reload of it) refills. */
  gen: -1,
  sec: new Float64Array(CHART_SECONDS + 1).fill(-1),
  up: new Float64Array(CHART_SECONDS + 1),
  down: new Float64Array(CHART_SECONDS + 1),
  /** The server's clock minus this browser's, from the last answer. */
  skewMs: 0,
  /** Whether the server's history has been read for `sid`. */
  loaded: false,
  /** Answers from the server applied for `sid`. */
  refills: 0,
  /** Counts requests, so an answer for an older request or selection is ignored. */
  request: 0,
  settleTimer: null,
  /** The second drawn last and whether something changed since. */
  drawnSec: -1,
  dirty: true,
};

function slot(sec) {
  const n = ring.sec.length;
  return ((sec % n) + n) % n;
}

function bucket(sec) {
  const i = slot(sec);
  if (ring.sec[i] !== sec) {
    ring.sec[i] = sec;
    ring.up[i] = 0;
    ring.down[i] = 0;
  }
  return i;
}

function serverNowMs() {
  return Date.now() + ring.skewMs;
}

/** Adds a live message (called for every data event; only the selected session's count). */
export function sessionChartAdd(m) {
  if (m.session_id !== ring.sid || ring.gen !== log.gen || typeof m.ts_ms !== 'number') return;
  const len = typeof m.len === 'number' ? m.len : 0;
  const i = bucket(Math.floor(m.ts_ms / 1000));
  ring[m.direction === 'up' ? 'up' : 'down'][i] += len;
  ring.dirty = true;
}

/** Reads the selected session's last minute from the server's history. */
async function refill() {
  const sid = ring.sid;
  const request = ++ring.request;
  if (sid == null) return;
  try {
    // On a cluster `sid` is NODE:ID: the node holding the session answers.
    const r = await api('GET', 'api/rates?seconds=' + CHART_SECONDS + '&session=' + encodeURIComponent(sid));
    if (request !== ring.request || sid !== ring.sid) return;
    const nowMs = typeof r.now_ms === 'number' ? r.now_ms : Date.now();
    ring.skewMs = nowMs - Date.now();
    // The answer covers every complete second before the server's current one; the seconds
    // it does not list had no traffic (or their history was deleted). The last ones may not
    // be stored yet: there the live count stays when it is larger.
    const until = Math.floor(nowMs / 1000);
    const got = new Map();
    for (const b of r.seconds || []) got.set(Math.floor(b.t_ms / 1000), b);
    for (let sec = until - CHART_SECONDS; sec < until; sec++) {
      const b = got.get(sec);
      const up = b ? b.bytes_up || 0 : 0;
      const down = b ? b.bytes_down || 0 : 0;
      const i = bucket(sec);
      const keepLive = sec >= until - UNSETTLED_SECONDS;
      ring.up[i] = keepLive ? Math.max(ring.up[i], up) : up;
      ring.down[i] = keepLive ? Math.max(ring.down[i], down) : down;
    }
    ring.loaded = true;
    ring.refills += 1;
    ring.dirty = true;
    schedule();
  } catch (e) {
    // The chart keeps what it has (live data); the next selection reads it again.
  }
}

/** Starts over for the current selection: empty, then filled from the server. */
function follow() {
  ring.sid = log.sid;
  ring.gen = log.gen;
  ring.sec.fill(-1);
  ring.loaded = false;
  ring.refills = 0;
  ring.request += 1;
  ring.dirty = true;
  clearTimeout(ring.settleTimer);
  if (ring.sid == null) return;
  refill();
  ring.settleTimer = setTimeout(refill, SESSION_CHART_SETTLE_MS);
}

/** The complete seconds before `nowSec`, oldest first (a partial second would dip). */
function series(dir, nowSec) {
  const out = new Array(CHART_SECONDS);
  for (let k = 0; k < CHART_SECONDS; k++) {
    const sec = nowSec - CHART_SECONDS + k;
    const i = slot(sec);
    out[k] = ring.sec[i] === sec ? ring[dir][i] : 0;
  }
  return out;
}

function scaleMax(v) {
  return v <= 64 ? 64 : Math.pow(2, Math.ceil(Math.log2(v)));
}

/** The seconds with traffic as "second:bytes" pairs, for tests and the curious. */
function nonZero(values, nowSec) {
  const out = [];
  values.forEach((v, k) => {
    if (v) out.push(nowSec - CHART_SECONDS + k + ':' + Math.round(v));
  });
  return out.join(' ');
}

/** Frame renderer: follows the selection and redraws when data came in or a second passed. */
export function renderSessionChart() {
  const canvas = $('detail-chart');
  if (!canvas) return;
  if (log.sid !== ring.sid || log.gen !== ring.gen) follow();
  const nowSec = Math.floor(serverNowMs() / 1000);
  if (!ring.dirty && nowSec === ring.drawnSec) return;
  ring.dirty = false;
  ring.drawnSec = nowSec;
  const up = series('up', nowSec);
  const down = series('down', nowSec);
  const sum = (a) => a.reduce((x, y) => x + y, 0);
  const peak = Math.max(...up, ...down);
  // What is drawn: per-second bytes, totals and state.
  const d = canvas.dataset;
  d.sid = ring.sid == null ? '' : String(ring.sid);
  d.loaded = String(ring.loaded);
  d.refills = String(ring.refills);
  d.totalUp = String(Math.round(sum(up)));
  d.totalDown = String(Math.round(sum(down)));
  d.up = nonZero(up, nowSec);
  d.down = nonZero(down, nowSec);
  const max = scaleMax(peak);
  $('detail-chart-scale').textContent = fmtBytes(max) + '/s';
  const area = clearedCanvas(canvas);
  if (!area) return;
  const { ctx, w, h } = area;
  const css = getComputedStyle(document.documentElement);
  const step = w / (CHART_SECONDS - 1);
  const line = (values, color) => {
    ctx.beginPath();
    values.forEach((v, k) => {
      const y = h - 1 - ((h - 2) * v) / max;
      if (k === 0) ctx.moveTo(0, y);
      else ctx.lineTo(k * step, y);
    });
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
  };
  line(up, css.getPropertyValue('--up').trim() || '#0d9488');
  line(down, css.getPropertyValue('--down').trim() || '#7c3aed');
}
