// socklab dashboard: the selected session's message log, its text/hex rendering and escaping.
// Payloads are only ever written with textContent.

import { api, showError } from './api.js';
import { schedule } from './main.js';
import { putSession } from './sessions.js';
import { $, LOG_CAP, MSG_PAGE, PAYLOAD_SHOW_MAX, RECENT_PER_SESSION, RECENT_SESSIONS, dirty, el, fmtInt, fmtTime, log, model, msOf } from './state.js';

// ------------------------------------------------------------------ formatting

export const HEX = '0123456789abcdef';
export const hex2 = (b) => HEX[b >> 4] + HEX[b & 15];

export function hexToBytes(hex) {
  const clean = hex.length % 2 ? hex.slice(0, -1) : hex;
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
  return out;
}

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

/** Code points shown escaped although valid UTF-8: invisible or reordering characters. */
export function invisible(cp) {
  return (
    cp < 0xa0 ||
    cp === 0xad ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x2028 && cp <= 0x202e) ||
    (cp >= 0x2060 && cp <= 0x206f) ||
    cp === 0xfeff ||
    (cp >= 0xfff0 && cp <= 0xffff)
  );
}

/**
 * Bytes as readable text: printable ASCII and valid, visible UTF-8 as is; \r \n \t and the
 * backslash escaped; every other byte as \xNN.
 */
export function escapeBytes(b) {
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      if (c === 0x0a) out += '\\n';
      else if (c === 0x0d) out += '\\r';
      else if (c === 0x09) out += '\\t';
      else if (c === 0x5c) out += '\\\\';
      else if (c >= 0x20 && c < 0x7f) out += String.fromCharCode(c);
      else out += '\\x' + hex2(c);
      i += 1;
      continue;
    }
    let need = 0;
    let cp = 0;
    let min = 0;
    if (c >= 0xc2 && c <= 0xdf) [need, cp, min] = [1, c & 0x1f, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [need, cp, min] = [2, c & 0x0f, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [need, cp, min] = [3, c & 0x07, 0x10000];
    let ok = need > 0 && i + need < b.length;
    for (let j = 1; ok && j <= need; j++) {
      const cc = b[i + j];
      if ((cc & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (cc & 0x3f);
    }
    ok = ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && !invisible(cp);
    if (ok) {
      out += String.fromCodePoint(cp);
      i += need + 1;
    } else {
      out += '\\x' + hex2(c);
      i += 1;
    }
  }
  return out;
}

export function bytesToHex(b) {
  const parts = new Array(b.length);
  for (let i = 0; i < b.length; i++) parts[i] = hex2(b[i]);
  return parts.join(' ');
}

// ------------------------------------------------------------------ message log

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
  $('log-info').textContent = 'loading\u2026';
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

export async function loadOlder() {
  const gen = log.gen;
  const sid = log.sid;
  if (sid == null || log.start <= 0) return;
  const offset = Math.max(0, log.start - MSG_PAGE);
  try {
    const r = await fetchMessages(sid, offset, log.start - offset);
    if (gen !== log.gen) return;
    const box = $('log');
    const before = box.scrollHeight - box.scrollTop;
    const frag = document.createDocumentFragment();
    const added = [];
    for (const m of r.messages) {
      if (m.id != null && log.ids.has(m.id)) continue;
      const entry = makeRow(m);
      added.push(entry);
      frag.appendChild(entry.el);
      if (m.id != null) log.ids.add(m.id);
    }
    box.insertBefore(frag, box.firstChild);
    log.entries = added.concat(log.entries);
    log.cap += added.length;
    log.start = offset;
    box.scrollTop = box.scrollHeight - before;
    dirty.detail = true;
    schedule();
  } catch (e) {
    showError('Loading older messages', e);
  }
}

export function renderPayload(entry) {
  const b = messageBytes(entry.m);
  const shown = b.length > PAYLOAD_SHOW_MAX ? b.subarray(0, PAYLOAD_SHOW_MAX) : b;
  const text = model.view === 'hex' ? bytesToHex(shown) : escapeBytes(shown);
  entry.payloadEl.textContent = text;
  const full = Math.max(entry.m.len || 0, b.length);
  if (full > shown.length) {
    entry.payloadEl.appendChild(el('span', 'more', ' \u2026 +' + fmtInt(full - shown.length) + ' bytes'));
  }
}

export function makeRow(m) {
  const up = m.direction === 'up';
  const row = el('div', 'log-row ' + (up ? 'up' : 'down'));
  row.dataset.testid = 'log-row';
  row.dataset.direction = up ? 'up' : 'down';
  if (m.id != null) row.dataset.msgId = String(m.id);
  const ms = msOf(m, 'ts');
  const time = el('span', 'log-time', ms != null ? fmtTime(ms) : '');
  if (ms != null) time.title = new Date(ms).toISOString();
  row.appendChild(time);
  const dir = el('span', 'log-dir', up ? '\u2191 up' : '\u2193 down');
  dir.title = up ? 'device \u2192 server' : 'server \u2192 device';
  row.appendChild(dir);
  const len = typeof m.len === 'number' ? m.len : messageBytes(m).length;
  row.appendChild(el('span', 'log-len', fmtInt(len) + ' B'));
  const payloadEl = el('span', 'log-payload');
  payloadEl.dataset.testid = 'log-payload';
  row.appendChild(payloadEl);
  if (m.dropped) {
    // The emulated link discarded it: it never reached the other side.
    row.classList.add('dropped');
    row.dataset.dropped = 'true';
    const tag = el('span', 'log-drop', 'dropped by link');
    tag.dataset.testid = 'log-dropped';
    row.appendChild(tag);
  }
  const entry = { m, el: row, payloadEl };
  renderPayload(entry);
  return entry;
}

export function flushLog() {
  if (!log.pending.length) return;
  const box = $('log');
  const follow = $('log-follow').checked;
  let batch = log.pending;
  log.pending = [];
  if (batch.length > log.cap) {
    log.start += batch.length - log.cap;
    batch = batch.slice(batch.length - log.cap);
  }
  const frag = document.createDocumentFragment();
  for (const m of batch) {
    if (m.id != null) {
      if (log.ids.has(m.id)) continue;
      log.ids.add(m.id);
    }
    const entry = makeRow(m);
    log.entries.push(entry);
    frag.appendChild(entry.el);
  }
  box.appendChild(frag);
  const excess = log.entries.length - log.cap;
  if (excess > 0) {
    for (const entry of log.entries.splice(0, excess)) {
      entry.el.remove();
      if (entry.m.id != null) log.ids.delete(entry.m.id);
    }
    log.start += excess;
  }
  if (follow) box.scrollTop = box.scrollHeight;
  dirty.detail = true;
}

export function rerenderPayloads() {
  for (const entry of log.entries) renderPayload(entry);
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
