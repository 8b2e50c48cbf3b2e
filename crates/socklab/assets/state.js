// socklab dashboard: plain JavaScript ES modules, no build step, no external resources.
//
// Data flow: the live event stream (/api/events, Server-Sent Events) and the JSON API feed one
// in-memory model (sessions, the selected session's log, totals, throughput buckets). Handlers
// only update the model and mark what changed; one flush per animation frame writes the DOM, so
// a device sending thousands of messages per second costs one layout per frame, not one per
// message. Device payloads are only ever written with textContent: nothing a device sends is
// parsed as HTML.
//
// Modules import only downwards, in this order (checked by scripts/check_js_layers.py):
//   state, bytes  <- frame (scheduler, renderer registry) <- api (HTTP, error banner)
//   <- model (session bookkeeping) <- views (sessions, log, listeners, charts, send, search)
//   <- events (live stream) <- main (wiring). Nothing imports main.
//
// This module holds the shared state and the small formatting helpers; it imports nothing.

/** Rows kept in the rendered log; older messages stay loadable through the messages API. */
export const LOG_CAP = 500;
/** Messages fetched per API page. */
export const MSG_PAGE = 500;
/** Sessions fetched per API page. */
export const SESSION_PAGE = 200;
/** Session rows rendered at most; the newest are shown first. */
export const SESSION_RENDER_CAP = 500;
/** Recent live messages remembered per unselected session (covers a store that lags behind). */
export const RECENT_PER_SESSION = 50;
/** Sessions whose recent messages are remembered (least recently active ones are dropped). */
export const RECENT_SESSIONS = 200;
/** Bytes of one payload rendered at most (the rest is summarised). */
export const PAYLOAD_SHOW_MAX = 4096;
/** Failed TLS handshakes listed per TLS listener (the newest). */
export const TLS_FAILURES_SHOWN = 5;
/** Seconds of history in the throughput chart. */
export const CHART_SECONDS = 60;

export const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ model

export const model = {
  sessions: new Map(), // id -> Session object from the API / events
  filter: 'all', // 'online' | 'all'
  pageOffset: 0, // sessions fetched from the API for the current filter
  pageTotal: 0, // total the API reported for the current filter
  onlineInMap: 0, // sessions in `sessions` that are online (kept up to date by putSession)
  onlineExtra: 0, // online sessions the API reported but that were not fetched (beyond a page)
  sessionExtra: 0, // sessions the API reported that are not in `sessions`
  listeners: new Map(),
  tlsFailures: new Map(), // TLS listener id -> its latest failed handshakes (events), newest first
  totals: { up: 0, down: 0 },
  statsSeenAt: 0, // last time a {"type":"stats"} event arrived (then totals come from it)
  recent: new Map(), // session id -> last few live messages
  view: 'text', // payload rendering: 'text' | 'hex'
  zone: 'utc', // times shown in 'utc' (as the console and the API) or 'local'
  allTotal: 0, // sessions in history when the API last counted them ...
  allNewestId: 0, // ... and the newest session id it counted: newer ids are counted on top
};

/** The selected session's log. `gen` invalidates fetches started for an older selection. */
export const log = {
  sid: null,
  gen: 0,
  loading: false,
  buffer: [], // live messages that arrived while the history was loading
  entries: [], // [{m, el, payloadEl}] in display order
  ids: new Set(),
  start: 0, // index of the first rendered message in the session's full history
  cap: LOG_CAP,
  pending: [], // live messages waiting for the next frame
};

export const dirty = {
  list: false,
  rows: new Set(),
  detail: false,
  totals: false,
  listeners: false,
  logReset: false, // the selection changed: the rendered log must be emptied
};

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '0 B';
  if (n < 1024) return Math.round(n) + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[u];
}

// Thousands separators without toLocaleString (measurably slow at thousands of rows/s).
export const fmtInt = (n) => String(Math.round(Number(n) || 0)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
export const pad = (n, w) => String(n).padStart(w, '0');

export function msOf(obj, key) {
  const ms = obj[key + '_ms'];
  if (typeof ms === 'number') return ms;
  const parsed = Date.parse(obj[key] || '');
  return Number.isNaN(parsed) ? null : parsed;
}

/** Date parts of `ms` in the chosen zone (UTC, as the console prints, or the browser's). */
function parts(ms) {
  const d = new Date(ms);
  return model.zone === 'local'
    ? [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()]
    : [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()];
}

/** The zone times are shown in: "UTC" or the browser's offset ("UTC+08:00"). */
export function zoneLabel() {
  if (model.zone !== 'local') return 'UTC';
  const off = -new Date().getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  return 'UTC' + sign + pad(Math.floor(Math.abs(off) / 60), 2) + ':' + pad(Math.abs(off) % 60, 2);
}

/** HH:MM:SS.mmm in the chosen zone; UTC times end in Z, as on the console. */
export function fmtTime(ms) {
  const p = parts(ms);
  return pad(p[3], 2) + ':' + pad(p[4], 2) + ':' + pad(p[5], 2) + '.' + pad(p[6], 3) + (model.zone === 'local' ? '' : 'Z');
}

export function fmtDateTime(ms) {
  if (ms == null) return '\u2014';
  const p = parts(ms);
  return p[0] + '-' + pad(p[1], 2) + '-' + pad(p[2], 2) + ' ' + fmtTime(ms);
}

export const reasonText = (r) => (r ? String(r).replace(/_/g, ' ') : '');

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}
