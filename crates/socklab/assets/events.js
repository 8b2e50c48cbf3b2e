// socklab dashboard: the live event stream (Server-Sent Events), reconnect and resync.

import { tokenQuery } from './api.js';
import { schedule } from './frame.js';
import {
  chart,
  chartAdd,
  loadCounts,
  loadListeners,
  loadSessions,
  loadTotals,
  messageBytes,
  putSession,
  rememberRecent,
  select,
  slim,
  spread,
} from './model.js';
import { sessionChartAdd } from './sessionchart.js';
import { loadPeriodic, onPeriodicEvent } from './snippets.js';
import { $, PAYLOAD_SHOW_MAX, TLS_FAILURES_SHOWN, dirty, log, model } from './state.js';

export const RETRY_MIN_MS = 1000;
export const RETRY_MAX_MS = 10000;

// ------------------------------------------------------------------ live events

export function statsActive() {
  return Date.now() - model.statsSeenAt < 5000;
}

/** Data events larger than this are decoded by `parseBigData` instead of JSON.parse. */
export const BIG_EVENT_CHARS = 16384;

/**
 * Decodes a large data event without parsing its whole payload: a 64 KiB read arrives as
 * ~200 KB of JSON (hex plus text), and JSON.parse of every one of them is what made the
 * page fall behind a fast device. Only the message header, the first PAYLOAD_SHOW_MAX
 * bytes of hex and the session object are read. Returns null when the event does not
 * have the expected shape, and the caller falls back to JSON.parse.
 */
export function parseBigData(raw) {
  if (!raw.startsWith('{"type":"data","message":{')) return null;
  const hexAt = raw.indexOf('"hex":"');
  const sessionAt = raw.lastIndexOf(',"session":{');
  if (hexAt < 0 || sessionAt < hexAt) return null;
  const head = JSON.parse(raw.slice(26 - 1, hexAt).replace(/,\s*$/, '') + '}');
  const hexStart = hexAt + 7;
  const hexEnd = raw.indexOf('"', hexStart);
  if (hexEnd < 0 || typeof head.session_id !== 'number') return null;
  head.hex = raw.slice(hexStart, Math.min(hexEnd, hexStart + 2 * PAYLOAD_SHOW_MAX));
  if (typeof head.len !== 'number') head.len = (hexEnd - hexStart) >> 1;
  const session = JSON.parse(raw.slice(sessionAt + 11, raw.lastIndexOf('}')));
  return { type: 'data', message: head, session };
}

export function onEvent(raw) {
  let ev = null;
  try {
    if (raw.length > BIG_EVENT_CHARS) ev = parseBigData(raw);
  } catch (e) {
    ev = null;
  }
  try {
    if (!ev) ev = JSON.parse(raw);
  } catch (e) {
    return;
  }
  if (!ev || typeof ev !== 'object') return;
  switch (ev.type) {
    case 'online':
      putSession(ev.session, true);
      break;
    case 'offline': {
      const old = putSession(ev.session, true);
      // An online session we never fetched: it was counted in onlineExtra.
      if (!old) model.onlineExtra = Math.max(0, model.onlineExtra - 1);
      break;
    }
    case 'data':
      onData(ev);
      break;
    case 'listener':
      if (ev.listener) {
        model.listeners.set(ev.listener.id, ev.listener);
        dirty.listeners = true;
      }
      break;
    case 'listener_removed':
      if (ev.listener) {
        model.listeners.delete(ev.listener.id);
        model.tlsFailures.delete(ev.listener.id);
        dirty.listeners = true;
      }
      break;
    case 'stats':
      onStats(ev);
      break;
    case 'link':
      // State changes (outage, reset, NAT drop, link set) carry the session; the
      // per-piece reports (delayed, throttled, dropped) do not and change nothing here.
      if (!ev.session) return;
      putSession(ev.session, true);
      break;
    case 'tls_failed': {
      // A device failed the TLS handshake: its listener's count and last reason change.
      const l = model.listeners.get(ev.listener_id);
      // On a cluster, another node's listener with the same id is not this one.
      if (!l || !l.tls || (ev.node !== undefined && ev.node !== l.node)) return;
      l.tls.handshake_failures += 1;
      l.tls.last_failure = ev;
      const recent = model.tlsFailures.get(l.id) || [];
      recent.unshift(ev);
      recent.length = Math.min(recent.length, TLS_FAILURES_SHOWN);
      model.tlsFailures.set(l.id, recent);
      dirty.listeners = true;
      break;
    }
    case 'periodic':
      onPeriodicEvent(ev);
      break;
    case 'lagged':
    case 'resync':
      // The server dropped events for us: reload what is on screen.
      resync();
      break;
    default:
      return;
  }
  schedule();
}

export function onData(ev) {
  const m = ev.message;
  if (!m) return;
  slim(m);
  const dir = m.direction === 'up' ? 'up' : 'down';
  const len = typeof m.len === 'number' ? m.len : messageBytes(m).length;
  if (ev.session) {
    const old = putSession(ev.session, true);
    if (!old && ev.session.online) {
      // Traffic of an online session we never fetched: it was counted in onlineExtra.
      model.onlineExtra = Math.max(0, model.onlineExtra - 1);
    }
  }
  if (!statsActive()) {
    model.totals[dir] += len;
    chartAdd(dir, len, Date.now());
    dirty.totals = true;
  }
  if (m.session_id === log.sid) {
    if (log.loading) log.buffer.push(m);
    else {
      log.pending.push(m);
      // Never hold more than a rendered log's worth while the tab does not paint.
      if (log.pending.length > 2 * log.cap) {
        const drop = log.pending.length - log.cap;
        log.pending.splice(0, drop);
        log.start += drop;
      }
    }
  }
  sessionChartAdd(m);
  rememberRecent(m);
}

export function onStats(ev) {
  const now = typeof ev.ts_ms === 'number' ? ev.ts_ms : Date.now();
  const prev = chart.lastStats;
  const local = Date.now();
  if (prev && now > prev.ts) {
    spread('up', Math.max(0, ev.bytes_up - prev.up), prev.local, local);
    spread('down', Math.max(0, ev.bytes_down - prev.down), prev.local, local);
  }
  chart.lastStats = { ts: now, local, up: ev.bytes_up, down: ev.bytes_down };
  model.statsSeenAt = Date.now();
  model.totals.up = ev.bytes_up;
  model.totals.down = ev.bytes_down;
  if (typeof ev.online === 'number') {
    // The server's exact count: online sessions not in the model are the difference.
    model.onlineExtra = Math.max(0, ev.online - model.onlineInMap);
  }
  dirty.totals = true;
}

/** The stream and its reconnect state. `missed` is set by an error: the next open catches up. */
const conn = { stream: null, retryMs: RETRY_MIN_MS, retryTimer: null, missed: false, opened: false };

export function setStreamState(st, text) {
  const chip = $('stream-state');
  chip.dataset.state = st;
  chip.textContent = text;
  chip.className = 'chip ' + (st === 'live' ? 'chip-ok' : st === 'error' ? 'chip-bad' : 'chip-wait');
}

/** Opens the event stream; after an error it is closed and reopened with a growing delay. */
export function connect() {
  clearTimeout(conn.retryTimer);
  const es = new EventSource('api/events' + tokenQuery());
  conn.stream = es;
  es.onopen = () => {
    conn.retryMs = RETRY_MIN_MS;
    setStreamState('live', 'live');
    // Events missed while disconnected are recovered from the API. The first open reloads
    // the sessions too: a device that came online between the page's first load and the
    // stream's start would otherwise be missed.
    if (conn.missed) resync();
    else if (!conn.opened) {
      loadSessions(true);
      loadCounts();
    }
    conn.opened = true;
    conn.missed = false;
  };
  const handler = (e) => onEvent(e.data);
  es.onmessage = handler;
  for (const name of ['online', 'offline', 'data', 'listener', 'listener_removed', 'stats', 'lagged', 'resync']) {
    es.addEventListener(name, handler);
  }
  es.onerror = () => {
    if (conn.stream !== es) return;
    es.close();
    conn.stream = null;
    conn.missed = true;
    setStreamState('error', 'reconnecting in ' + Math.round(conn.retryMs / 1000) + ' s');
    conn.retryTimer = setTimeout(connect, conn.retryMs);
    conn.retryMs = Math.min(conn.retryMs * 2, RETRY_MAX_MS);
  };
}

/** A queued resync, and when the last one ran. */
const pending = { queued: false, at: 0 };
/** Resyncs run at most this often (a lagging stream may report lag every second). */
export const RESYNC_MIN_MS = 2000;

export function resync() {
  if (pending.queued) return;
  pending.queued = true;
  const wait = Math.max(100, pending.at + RESYNC_MIN_MS - Date.now());
  setTimeout(() => {
    pending.queued = false;
    pending.at = Date.now();
    loadSessions(true);
    loadCounts();
    loadListeners();
    loadTotals();
    loadPeriodic();
    if (log.sid != null) {
      const sid = log.sid;
      log.sid = null;
      select(sid);
    }
  }, wait);
}
