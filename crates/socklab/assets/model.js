// socklab dashboard: session bookkeeping. What the dashboard knows about sessions, listeners,
// the selected session's messages and the throughput history, and how it loads them from the
// API. No rendering here: changes mark `dirty` and call `schedule()`.

import { TOKEN, api, showError } from './api.js';
import { hexToBytes } from './bytes.js';
import { schedule } from './frame.js';
import {
  CHART_SECONDS,
  LOG_CAP,
  MSG_PAGE,
  PAYLOAD_SHOW_MAX,
  RECENT_PER_SESSION,
  RECENT_SESSIONS,
  SESSION_PAGE,
  dirty,
  log,
  model,
} from './state.js';

// ------------------------------------------------------------------ messages

/**
 * Keeps only what can be rendered of a message: a device's 64 KiB reads would otherwise
 * pin megabytes per log row. `len` keeps the full size for the "+N bytes" note.
 */
export function slim(m) {
  if (typeof m.len !== 'number') m.len = typeof m.hex === 'string' ? m.hex.length >> 1 : (m.text || '').length;
  if (typeof m.hex === 'string') {
    if (m.hex.length > 2 * PAYLOAD_SHOW_MAX) m.hex = m.hex.slice(0, 2 * PAYLOAD_SHOW_MAX);
    m.text = undefined;
  }
  return m;
}

export function messageBytes(m) {
  if (!m._bytes) {
    m._bytes = typeof m.hex === 'string' ? hexToBytes(m.hex) : new TextEncoder().encode(m.text || '');
  }
  return m._bytes;
}

export function rememberRecent(m) {
  const sid = m.session_id;
  let list = model.recent.get(sid);
  if (list) model.recent.delete(sid);
  else list = [];
  list.push(m);
  if (list.length > RECENT_PER_SESSION) list.splice(0, list.length - RECENT_PER_SESSION);
  model.recent.set(sid, list); // re-insert: Map order = least recently active first
  if (model.recent.size > RECENT_SESSIONS) model.recent.delete(model.recent.keys().next().value);
}

// ------------------------------------------------------------------ throughput history

/** Bytes per second, up and down, for the last CHART_SECONDS seconds (a ring by second). */
export const chart = {
  up: new Float64Array(CHART_SECONDS + 1),
  down: new Float64Array(CHART_SECONDS + 1),
  sec: new Float64Array(CHART_SECONDS + 1).fill(-1),
  lastStats: null,
};

/** Seconds the header's rate is averaged over (one-second buckets alone flicker). */
export const RATE_SMOOTH_SECONDS = 5;

export function chartAdd(dir, bytes, atMs) {
  const sec = Math.floor(atMs / 1000);
  const i = sec % chart.sec.length;
  if (chart.sec[i] !== sec) {
    chart.sec[i] = sec;
    chart.up[i] = 0;
    chart.down[i] = 0;
  }
  chart[dir][i] += bytes;
}

/**
 * Adds bytes moved between two local times to the chart, split over the seconds the
 * interval covers, so stats events that jitter around second boundaries draw no spikes.
 */
export function spread(dir, bytes, fromMs, toMs) {
  if (!bytes) return;
  if (!(toMs > fromMs) || toMs - fromMs > 10000) {
    chartAdd(dir, bytes, toMs - 1);
    return;
  }
  for (let t = fromMs; t < toMs; ) {
    const end = Math.min(toMs, (Math.floor(t / 1000) + 1) * 1000);
    chartAdd(dir, (bytes * (end - t)) / (toMs - fromMs), t);
    t = end;
  }
}

/** The complete seconds before `nowSec`, oldest first (the current second is not drawn). */
export function chartSeries(dir, nowSec) {
  const out = new Array(CHART_SECONDS);
  for (let k = 0; k < CHART_SECONDS; k++) {
    const sec = nowSec - CHART_SECONDS + k;
    const i = ((sec % chart.sec.length) + chart.sec.length) % chart.sec.length;
    out[k] = chart.sec[i] === sec ? chart[dir][i] : 0;
  }
  return out;
}

/** Bytes per second averaged over the last RATE_SMOOTH_SECONDS complete seconds. */
export function smoothedRate(dir, nowSec) {
  const series = chartSeries(dir, nowSec);
  let sum = 0;
  for (let k = series.length - RATE_SMOOTH_SECONDS; k < series.length; k++) sum += series[k];
  return sum / RATE_SMOOTH_SECONDS;
}

/** Refills the chart from the server's recent history (after a reload it is not empty). */
export async function loadRecentRates() {
  try {
    const r = await api('GET', 'api/rates?seconds=' + CHART_SECONDS);
    const nowSec = Math.floor(Date.now() / 1000);
    for (const b of r.seconds || []) {
      const sec = Math.floor(b.t_ms / 1000);
      if (sec >= nowSec || sec < nowSec - CHART_SECONDS) continue;
      const i = sec % chart.sec.length;
      chart.sec[i] = sec;
      chart.up[i] = b.bytes_up || 0;
      chart.down[i] = b.bytes_down || 0;
    }
    dirty.totals = true;
    schedule();
  } catch (e) {
    // The chart then fills from the live stream only.
  }
}

// ------------------------------------------------------------------ sessions

/** Prefers the fresher of two snapshots of one session (offline is final; counters only grow). */
export function fresher(a, b) {
  if (!a) return b;
  if (a.online === false && b.online !== false) return a;
  if (b.online === false && a.online !== false) return b;
  const wa = (a.bytes_up || 0) + (a.bytes_down || 0) + (a.msgs_up || 0) + (a.msgs_down || 0);
  const wb = (b.bytes_up || 0) + (b.bytes_down || 0) + (b.msgs_up || 0) + (b.msgs_down || 0);
  return wb >= wa ? b : a;
}

/** Stores a session snapshot. `authoritative` snapshots (from events) replace older ones. */
export function putSession(s, authoritative) {
  const old = model.sessions.get(s.id);
  const next = authoritative ? s : fresher(old, s);
  model.sessions.set(s.id, next);
  const wasOnline = !!(old && old.online);
  if (wasOnline !== !!next.online) {
    model.onlineInMap += next.online ? 1 : -1;
    dirty.listeners = true;
  }
  if (!old || old.online !== next.online) dirty.list = true;
  dirty.rows.add(s.id);
  if (s.id === log.sid) dirty.detail = true;
  dirty.totals = true;
  return old;
}

/** Forgets sessions (their history was deleted). */
export function dropSessions(ids) {
  for (const id of ids) {
    const s = model.sessions.get(id);
    if (!s) continue;
    if (s.online) model.onlineInMap -= 1;
    model.sessions.delete(id);
    model.recent.delete(id);
  }
  dirty.list = true;
  dirty.totals = true;
  schedule();
}

/** Sessions the list shows for the current filter, newest first. */
export function visibleSessions() {
  const out = [];
  for (const s of model.sessions.values()) {
    if (model.filter === 'all' || s.online) out.push(s);
  }
  out.sort(newestFirst);
  return out;
}

/** Newest first: by id on one node; across a cluster (ids "NODE:ID") by start time. */
export function newestFirst(a, b) {
  if (typeof a.id === 'number' && typeof b.id === 'number') return b.id - a.id;
  return (b.started_at_ms || 0) - (a.started_at_ms || 0) || String(b.id).localeCompare(String(a.id));
}

/** A session id from the page or the URL: a number, or "NODE:ID" on a cluster. */
export function sessionIdOf(text) {
  return /^\d+$/.test(text) ? Number(text) : text;
}

/**
 * Sessions in history. The API's count covers ids up to the newest it saw; sessions with
 * newer ids are counted from what the dashboard knows, so two loads racing each other can
 * never count a session twice.
 */
export function sessionTotal() {
  let newer = 0;
  for (const id of model.sessions.keys()) if (id > model.allNewestId) newer += 1;
  return Math.max(model.sessions.size, model.allTotal + newer);
}

/** Remembers the API's count of all sessions, taken with the newest id it listed. */
function countAll(r) {
  if (typeof r.total !== 'number') return;
  const newest = (r.sessions || []).reduce((m, s) => Math.max(m, s.id), 0);
  model.allTotal = r.total;
  model.allNewestId = newest;
  dirty.totals = true;
}

export async function loadSessions(reset) {
  const filter = model.filter;
  const offset = reset ? 0 : model.pageOffset;
  try {
    const r = await api('GET', 'api/sessions?state=' + filter + '&limit=' + SESSION_PAGE + '&offset=' + offset);
    if (filter !== model.filter) return;
    for (const s of r.sessions || []) putSession(s, false);
    if (filter === 'all' && offset === 0) countAll(r);
    model.pageOffset = offset + (r.sessions || []).length;
    model.pageTotal = typeof r.total === 'number' ? r.total : model.pageOffset;
    dirty.list = true;
    dirty.totals = true;
    schedule();
  } catch (e) {
    showError('Loading sessions', e);
  }
}

/** Counts for the header: online and total sessions straight from the API. */
export async function loadCounts() {
  try {
    const [on, all] = await Promise.all([
      api('GET', 'api/sessions?state=online&limit=' + SESSION_PAGE + '&offset=0'),
      api('GET', 'api/sessions?state=all&limit=1&offset=0'),
    ]);
    const onlineIds = new Set();
    for (const s of on.sessions || []) {
      onlineIds.add(s.id);
      putSession(s, false);
    }
    const onTotal = typeof on.total === 'number' ? on.total : onlineIds.size;
    model.onlineExtra = Math.max(0, onTotal - onlineIds.size);
    countAll(all);
    // After a reconnect, sessions we still think online may have ended meanwhile: ask for
    // each (an offline answer wins in putSession; a newer online one changes nothing).
    if ((on.sessions || []).length >= onTotal) {
      const stale = [];
      for (const s of model.sessions.values()) if (s.online && !onlineIds.has(s.id)) stale.push(s.id);
      for (const id of stale.slice(0, 100)) {
        api('GET', 'api/sessions/' + id).then((fresh) => {
          putSession(fresh, false);
          schedule();
        }).catch(() => {});
      }
    }
    dirty.totals = true;
    schedule();
  } catch (e) {
    showError('Loading sessions', e);
  }
}

// ------------------------------------------------------------------ listeners and totals

export async function loadListeners() {
  try {
    const r = await api('GET', 'api/listeners');
    model.listeners.clear();
    for (const l of r.listeners || []) model.listeners.set(l.id, l);
    dirty.listeners = true;
    schedule();
  } catch (e) {
    showError('Loading listeners', e);
  }
}

/** Stores a listener the API answered with. */
export function putListener(l) {
  if (l && l.id != null) model.listeners.set(l.id, l);
  dirty.listeners = true;
  schedule();
}

/** Byte totals from the Prometheus endpoint, when it offers socklab_bytes_total. */
export async function loadTotals() {
  try {
    const headers = TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {};
    const resp = await fetch('metrics', { headers, cache: 'no-store' });
    if (!resp.ok) return;
    const text = await resp.text();
    const grab = (dir) => {
      const re = new RegExp('^socklab_bytes_total\\{[^}]*direction="' + dir + '"[^}]*\\}\\s+([0-9.eE+]+)', 'm');
      const m = text.match(re);
      return m ? Number(m[1]) : null;
    };
    const up = grab('up');
    const down = grab('down');
    if (up != null && down != null) {
      model.totals.up = up;
      model.totals.down = down;
      dirty.totals = true;
      schedule();
    }
  } catch (e) {
    // Totals then grow from the live events only.
  }
}

// ------------------------------------------------------------------ selection and its log

/** Selects a session (or none) and starts loading its log. */
export function select(id) {
  if (log.sid === id) return;
  const prev = log.sid;
  log.sid = id;
  log.gen += 1;
  log.entries = [];
  log.ids = new Set();
  log.pending = [];
  log.buffer = [];
  log.start = 0;
  log.cap = LOG_CAP;
  dirty.logReset = true;
  if (prev != null) dirty.rows.add(prev);
  if (id != null) dirty.rows.add(id);
  dirty.list = true;
  dirty.detail = true;
  history.replaceState(null, '', location.pathname + location.search + (id != null ? '#session=' + id : ''));
  schedule();
  if (id != null) loadLog(log.gen);
}

export async function fetchMessages(sid, offset, count) {
  const out = [];
  let total = 0;
  let at = offset;
  for (let page = 0; page < 20 && out.length < count; page++) {
    const limit = Math.min(MSG_PAGE, count - out.length);
    const r = await api('GET', 'api/sessions/' + sid + '/messages?limit=' + limit + '&offset=' + at);
    const got = (r.messages || []).map(slim);
    total = typeof r.total === 'number' ? r.total : at + got.length;
    out.push(...got);
    at += got.length;
    if (got.length === 0 || at >= total) break;
  }
  return { messages: out, total };
}

/** Loads the newest LOG_CAP messages of the selected session, merged with live ones. */
export async function loadLog(gen) {
  const sid = log.sid;
  log.loading = true;
  const recent = model.recent.get(sid) || [];
  log.buffer.push(...recent);
  dirty.detail = true;
  schedule();
  try {
    if (!model.sessions.has(sid)) {
      // Selected from the URL or an old page: fetch it (a 404 shows as an error).
      putSession(await api('GET', 'api/sessions/' + sid), false);
      if (gen !== log.gen) return;
    }
    const s = model.sessions.get(sid);
    const guess = s ? (s.msgs_up || 0) + (s.msgs_down || 0) : 0;
    let offset = Math.max(0, guess - LOG_CAP);
    let r = await fetchMessages(sid, offset, LOG_CAP);
    if (gen !== log.gen) return;
    if (r.messages.length === 0 && offset > 0 && r.total < offset + 1) {
      offset = Math.max(0, r.total - LOG_CAP);
      r = await fetchMessages(sid, offset, LOG_CAP);
      if (gen !== log.gen) return;
    }
    if (r.total > offset + r.messages.length && r.messages.length >= LOG_CAP) {
      // More arrived than guessed: jump to the newest page.
      offset = Math.max(0, r.total - LOG_CAP);
      r = await fetchMessages(sid, offset, LOG_CAP);
      if (gen !== log.gen) return;
    }
    log.start = offset;
    const merged = r.messages.slice();
    const seen = new Set(merged.map((m) => m.id));
    for (const m of log.buffer) {
      if (m.id == null || !seen.has(m.id)) {
        merged.push(m);
        if (m.id != null) seen.add(m.id);
      }
    }
    if (merged.every((m) => typeof m.id === 'number')) merged.sort((a, b) => a.id - b.id);
    log.buffer = [];
    log.loading = false;
    log.pending = merged.concat(log.pending);
  } catch (e) {
    if (gen !== log.gen) return;
    log.loading = false;
    log.pending = log.buffer.concat(log.pending);
    log.buffer = [];
    showError('Loading messages of session #' + sid, e);
  }
  dirty.detail = true;
  schedule();
}
