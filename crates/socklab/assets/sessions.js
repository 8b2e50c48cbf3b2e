// socklab dashboard view: the session (device) list, the detail panel and the header totals.

import { api, showError } from './api.js';
import { schedule } from './frame.js';
import { loadSessions, select, sessionIdOf, sessionTotal, visibleSessions } from './model.js';
import { $, SESSION_RENDER_CAP, dirty, el, fmtBytes, fmtDateTime, fmtInt, log, model, msOf, reasonText } from './state.js';

export async function closeSession(id) {
  try {
    await api('POST', 'api/sessions/' + id + '/close');
  } catch (e) {
    showError('Closing session #' + id, e);
  }
}

export const rowEls = new Map(); // session id -> <li>

export function sessionRow(s) {
  let li = rowEls.get(s.id);
  if (!li) {
    li = el('li', 'session-row');
    li.dataset.testid = 'session-row';
    li.dataset.sessionId = String(s.id);
    li.tabIndex = 0;
    li.setAttribute('role', 'button');
    const dot = el('span', 'dot');
    const main = el('div', 'row-main');
    const l1 = el('div', 'row-line');
    l1.appendChild(el('span', 'sid', '#' + s.id));
    const label = el('span', 'row-label');
    label.dataset.testid = 'session-label';
    l1.appendChild(label);
    const kind = s.tls ? 'tls' : s.proto;
    const chip = el('span', 'proto proto-' + kind, kind);
    if (s.tls) chip.title = tlsText(s.tls);
    l1.appendChild(chip);
    // On a cluster, the node holding the session (absent on a single node).
    const node = el('span', 'node-label');
    node.dataset.testid = 'session-node';
    l1.appendChild(node);
    const peer = el('span', 'peer mono', s.peer);
    peer.dataset.testid = 'session-peer';
    l1.appendChild(peer);
    if (s.direction === 'outgoing') {
      const out = el('span', 'direction-out muted', 'out');
      out.title = 'socklab connected to this device (client mode)';
      out.dataset.testid = 'session-outgoing';
      l1.appendChild(out);
    }
    const l2 = el('div', 'row-line muted');
    const st = el('span', 'row-state');
    st.dataset.testid = 'session-state';
    const bytes = el('span', 'row-bytes mono');
    bytes.dataset.testid = 'session-bytes';
    l2.appendChild(st);
    l2.appendChild(bytes);
    const lk = el('span', 'row-link');
    lk.dataset.testid = 'session-link';
    l2.appendChild(lk);
    main.appendChild(l1);
    main.appendChild(l2);
    const close = el('button', 'row-close', '\u00d7');
    close.type = 'button';
    close.title = 'Close session #' + s.id;
    close.setAttribute('aria-label', 'Close session #' + s.id);
    close.dataset.testid = 'session-close';
    close.addEventListener('click', (e) => {
      e.stopPropagation();
      closeSession(s.id);
    });
    li.append(dot, main, close);
    li.addEventListener('click', () => select(s.id));
    li.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        select(s.id);
      }
    });
    rowEls.set(s.id, li);
  }
  updateRow(li, s);
  return li;
}

export function updateRow(li, s) {
  li.dataset.online = s.online ? 'true' : 'false';
  li.classList.toggle('offline', !s.online);
  li.classList.toggle('selected', s.id === log.sid);
  li.setAttribute('aria-pressed', s.id === log.sid ? 'true' : 'false');
  const node = li.querySelector('.node-label');
  node.textContent = s.node || '';
  node.hidden = !s.node;
  li.dataset.node = s.node || '';
  const st = li.querySelector('.row-state');
  st.textContent = s.unreachable
    ? 'unreachable'
    : s.online ? 'online' : 'offline' + (s.end_reason ? ' \u00b7 ' + reasonText(s.end_reason) : '');
  li.querySelector('.row-bytes').textContent =
    '\u2191 ' + fmtBytes(s.bytes_up || 0) + '  \u2193 ' + fmtBytes(s.bytes_down || 0);
  li.querySelector('.row-close').hidden = !s.online;
  const label = li.querySelector('.row-label');
  label.textContent = s.label || '';
  label.hidden = !s.label;
  // An offline session has no link any more: no chip.
  const lk = li.querySelector('.row-link');
  const link = s.online ? s.link : null;
  lk.textContent = link ? linkText(s) : '';
  lk.hidden = !link;
  lk.dataset.state = link ? link.state : '';
}

/** A TLS session's details as shown: "tls TLSv1.2 sni=modem.example". */
export function tlsText(tls) {
  return 'tls ' + tls.version + (tls.sni ? ' sni=' + tls.sni : '');
}

/** A session's emulated link as shown: "nbiot,nat_idle=270s", plus its state unless ok. */
export function linkText(s) {
  if (!s || !s.link) return '';
  return s.link.spec + (s.link.state && s.link.state !== 'ok' ? ' \u00b7 ' + reasonText(s.link.state) : '');
}

/** Arrow keys move the selection through the rendered session rows. */
export function moveSelection(e) {
  if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
  const rows = [...$('session-list').children];
  if (!rows.length) return;
  e.preventDefault();
  const at = rows.findIndex((li) => li.dataset.sessionId === String(log.sid));
  const next = e.key === 'ArrowDown' ? Math.min(rows.length - 1, at + 1) : Math.max(0, at - 1);
  const li = rows[at < 0 ? 0 : next];
  select(sessionIdOf(li.dataset.sessionId));
  li.focus();
}

export function renderList() {
  const all = visibleSessions();
  const shown = all.slice(0, SESSION_RENDER_CAP);
  const keep = new Set(shown.map((s) => s.id));
  for (const [id, li] of rowEls) {
    if (!keep.has(id)) {
      li.remove();
      rowEls.delete(id);
    }
  }
  const list = $('session-list');
  const want = shown.map(sessionRow);
  let same = list.children.length === want.length;
  for (let i = 0; same && i < want.length; i++) same = list.children[i] === want[i];
  if (!same) {
    // Re-inserting rows drops keyboard focus; give it back to the row that had it.
    const focused = document.activeElement;
    list.replaceChildren(...want);
    if (focused && focused !== document.body && list.contains(focused)) focused.focus();
  }
  $('session-empty').hidden = shown.length > 0;
  $('session-empty').textContent = model.filter === 'online' && model.sessions.size
    ? 'No device online.'
    : 'No devices yet. Point a device at a listener below.';
  const capped = all.length > SESSION_RENDER_CAP;
  $('sessions-more').hidden = capped || model.pageOffset >= model.pageTotal;
  $('sessions-note').hidden = !capped;
  $('sessions-note').textContent = capped
    ? 'Showing the newest ' + fmtInt(SESSION_RENDER_CAP) + ' of ' + fmtInt(all.length) + ' sessions.'
    : '';
}

export function renderDetail() {
  const s = log.sid != null ? model.sessions.get(log.sid) : null;
  $('detail-empty').hidden = log.sid != null;
  $('detail-body').hidden = log.sid == null;
  if (log.sid == null) return;
  $('detail').dataset.sessionId = String(log.sid);
  $('detail-title').textContent = 'Session #' + log.sid + (s && s.label ? ' \u00b7 ' + s.label : '');
  if (!s) return;
  const state = $('detail-state');
  state.textContent = s.online ? 'online' : 'offline' + (s.end_reason ? ' \u00b7 ' + reasonText(s.end_reason) : '');
  state.className = 'chip ' + (s.online ? 'chip-ok' : 'chip-off');
  state.dataset.online = s.online ? 'true' : 'false';
  const shownProto = s.tls ? tlsText(s.tls) : s.proto;
  $('detail-peer').textContent = s.direction === 'outgoing'
    ? shownProto + '  ' + (s.local || '') + ' \u2192 ' + s.peer + '  (outgoing: socklab connected)'
    : shownProto + '  ' + s.peer + ' \u2192 ' + (s.local || '');
  const node = $('detail-node');
  node.textContent = s.node ? 'node ' + s.node + (s.unreachable ? ' \u00b7 unreachable' : '') : '';
  node.hidden = !s.node;
  node.dataset.node = s.node || '';
  $('detail-bytes-up').textContent = fmtInt(s.bytes_up);
  $('detail-bytes-down').textContent = fmtInt(s.bytes_down);
  $('detail-msgs').textContent = fmtInt(s.msgs_up) + ' / ' + fmtInt(s.msgs_down);
  $('detail-started').textContent = fmtDateTime(msOf(s, 'started_at'));
  $('detail-ended').textContent = s.online ? '\u2014' : fmtDateTime(msOf(s, 'ended_at'));
  $('detail-close').disabled = !s.online;
  // Link controls only mean something while the device is online.
  $('link-bar').hidden = !s.online;
  const link = $('detail-link');
  link.textContent = s.link ? linkText(s) : 'none';
  link.dataset.state = s.link ? s.link.state : 'none';
  link.className = 'chip ' + (s.link && s.link.state !== 'ok' ? 'chip-off' : 'chip-link');
  for (const id of ['link-apply', 'fault-outage', 'fault-reset', 'fault-nat']) $(id).disabled = !s.online;
  // Sending to an offline device cannot work: say so instead of offering a button that fails.
  $('send-button').disabled = !s.online;
  $('send-input').disabled = !s.online;
  $('send-offline').hidden = !!s.online;
  const input = $('link-input');
  if (document.activeElement !== input && input.dataset.sid !== String(s.id)) {
    input.dataset.sid = String(s.id);
    input.value = s.link ? s.link.spec : '';
  }
  const total = (s.msgs_up || 0) + (s.msgs_down || 0);
  $('log-older').hidden = !(log.start > 0);
  $('log-info').textContent = log.loading
    ? 'loading\u2026'
    : 'showing ' + fmtInt(log.entries.length) + ' of ' + fmtInt(Math.max(total, log.entries.length)) + ' messages';
}

export function renderTotals() {
  $('total-online').textContent = fmtInt(model.onlineInMap + model.onlineExtra);
  $('total-sessions').textContent = fmtInt(sessionTotal());
  const up = $('total-up');
  const down = $('total-down');
  up.textContent = fmtBytes(model.totals.up);
  up.title = fmtInt(model.totals.up) + ' bytes';
  down.textContent = fmtBytes(model.totals.down);
  down.title = fmtInt(model.totals.down) + ' bytes';
  document.title = 'socklab \u00b7 ' + fmtInt(model.onlineInMap + model.onlineExtra) + ' online';
}

export function setFilter(f) {
  if (model.filter === f) return;
  model.filter = f;
  for (const b of document.querySelectorAll('[data-filter]')) b.classList.toggle('on', b.dataset.filter === f);
  model.pageOffset = 0;
  model.pageTotal = 0;
  dirty.list = true;
  schedule();
  loadSessions(true);
}

/** Frame renderer: the list (or only its changed rows). */
export function renderSessions() {
  if (dirty.list) {
    dirty.list = false;
    dirty.rows.clear();
    renderList();
  } else if (dirty.rows.size) {
    for (const id of dirty.rows) {
      const li = rowEls.get(id);
      const s = model.sessions.get(id);
      if (li && s) updateRow(li, s);
    }
    dirty.rows.clear();
  }
}

/** Frame renderer: the detail panel and the header totals. */
export function renderDetailAndTotals() {
  if (dirty.detail) {
    dirty.detail = false;
    renderDetail();
  }
  if (dirty.totals) {
    dirty.totals = false;
    renderTotals();
  }
}
