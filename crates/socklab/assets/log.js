// socklab dashboard view: the selected session's message log, its text/hex rendering and escaping.
// Payloads are only ever written with textContent.

import { showError } from './api.js';
import { bytesToHex, escapeBytes } from './bytes.js';
import { schedule } from './frame.js';
import { fetchMessages, messageBytes } from './model.js';
import { $, MSG_PAGE, PAYLOAD_SHOW_MAX, dirty, el, fmtInt, fmtTime, log, model, msOf, zoneLabel } from './state.js';

// ------------------------------------------------------------------ message log

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
  if (ms != null) {
    time.title = new Date(ms).toISOString();
    time.dataset.ms = String(ms);
  }
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

/** Rewrites every time in the log (the zone changed). */
export function rerenderTimes() {
  for (const entry of log.entries) {
    const t = entry.el.querySelector('.log-time');
    if (t && t.dataset.ms) t.textContent = fmtTime(Number(t.dataset.ms));
  }
  $('time-zone').textContent = zoneLabel();
}

/** Frame renderer: empties the log after a new selection, then appends what arrived. */
export function renderLog() {
  if (dirty.logReset) {
    dirty.logReset = false;
    $('log').replaceChildren();
  }
  if (!log.loading) flushLog();
}
