// socklab dashboard: the live event stream (Server-Sent Events), reconnect and resync.

import { TOKEN, loadTotals } from './api.js';
import { chart, chartAdd, spread } from './chart.js';
import { loadListeners } from './listeners.js';
import { messageBytes, rememberRecent, slim } from './log.js';
import { schedule } from './main.js';
import { loadCounts, loadSessions, putSession, select } from './sessions.js';
import { $, PAYLOAD_SHOW_MAX, dirty, log, model } from './state.js';

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
      if (!old) {
        model.onlineExtra = Math.max(0, model.onlineExtra - 1);
        model.sessionExtra = Math.max(0, model.sessionExtra - 1);
      }
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
    case 'stats':
      onStats(ev);
      break;
    case 'link':
      // State changes (outage, reset, NAT drop, link set) carry the session; the
      // per-piece reports (delayed, throttled, dropped) do not and change nothing here.
      if (!ev.session) return;
      putSession(ev.session, true);
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
      model.sessionExtra = Math.max(0, model.sessionExtra - 1);
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

export let stream = null;
export let retryMs = RETRY_MIN_MS;
export let retryTimer = null;
export let missedEvents = false; // set by a stream error: the next open must catch up

export function setStreamState(st, text) {
  const chip = $('stream-state');
  chip.dataset.state = st;
  chip.textContent = text;
  chip.className = 'chip ' + (st === 'live' ? 'chip-ok' : st === 'error' ? 'chip-bad' : 'chip-wait');
}

/** Opens the event stream; after an error it is closed and reopened with a growing delay. */
export function connect() {
  clearTimeout(retryTimer);
  const url = 'api/events' + (TOKEN ? '?token=' + encodeURIComponent(TOKEN) : '');
  const es = new EventSource(url);
  stream = es;
  es.onopen = () => {
    retryMs = RETRY_MIN_MS;
    setStreamState('live', 'live');
    // Events missed while disconnected are recovered from the API.
    if (missedEvents) resync();
    missedEvents = false;
  };
  const handler = (e) => onEvent(e.data);
  es.onmessage = handler;
  for (const name of ['online', 'offline', 'data', 'listener', 'stats', 'lagged', 'resync']) {
    es.addEventListener(name, handler);
  }
  es.onerror = () => {
    if (stream !== es) return;
    es.close();
    stream = null;
    missedEvents = true;
    setStreamState('error', 'reconnecting in ' + Math.round(retryMs / 1000) + ' s');
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  };
}

export let resyncQueued = false;
export let resyncAt = 0;
/** Resyncs run at most this often (a lagging stream may report lag every second). */
export const RESYNC_MIN_MS = 2000;

export function resync() {
  if (resyncQueued) return;
  resyncQueued = true;
  const wait = Math.max(100, resyncAt + RESYNC_MIN_MS - Date.now());
  setTimeout(() => {
    resyncQueued = false;
    resyncAt = Date.now();
    loadSessions(true);
    loadCounts();
    loadListeners();
    loadTotals();
    if (log.sid != null) {
      const sid = log.sid;
      log.sid = null;
      select(sid);
    }
  }, wait);
}
