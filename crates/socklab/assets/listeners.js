// socklab dashboard view: listeners (echo, link) and their auto-reply rules editor.
//
// The editor shows text fields with the console's escapes (\r \n \t \0 \\ \xHH) and turns
// them back into the same bytes on Save, so opening and saving a rule changes nothing.

import { api, hideError, showError } from './api.js';
import { ESCAPE_HINT, bytesToHex, escapeBytes, escapeText, parseEscapes, parseHex, utf8OrNull } from './bytes.js';
import { putListener } from './model.js';
import { $, dirty, el, fmtTime, model, msOf } from './state.js';

// ------------------------------------------------------------------ listeners

export async function setEcho(id, enabled) {
  try {
    putListener(await api('PUT', 'api/listeners/' + id + '/echo', { enabled }));
  } catch (e) {
    showError('Setting echo', e);
    putListener(null);
  }
}

/** How long the remove button of a listener with online devices waits for the second,
 * confirming click. */
const CONFIRM_MS = 4000;

/** Removes a listener (DELETE /api/listeners/ID). With devices online on it the first click
 * only arms the button ("disconnect N?"); a second click within a few seconds confirms, and
 * they are disconnected (end reason "listener removed"). */
export async function removeListener(l, button) {
  const online = [...model.sessions.values()].filter((s) => s.online && s.listener_id === l.id).length;
  const what = l.remote ? 'the connection to ' + l.remote : 'listener ' + l.proto + ' ' + l.addr;
  if (online && button.dataset.armed !== 'true') {
    button.dataset.armed = 'true';
    button.textContent = 'disconnect ' + online + '?';
    setTimeout(() => {
      button.dataset.armed = 'false';
      button.textContent = '\u00d7';
    }, CONFIRM_MS);
    return;
  }
  try {
    await api('DELETE', 'api/listeners/' + l.id);
    model.listeners.delete(l.id);
    putListener(null);
    hideError();
  } catch (e) {
    showError('Removing ' + what, e);
  }
}

export const listenerEls = new Map(); // listener id -> {li, meta, box}
/** The listener set the list and the broadcast menu were built for. */
const built = { key: '' };

/** One listener's row, built once; later renders only update it (clicks never hit a
 * replaced element while sessions come and go). */
export function listenerRow(l) {
  let row = listenerEls.get(l.id);
  if (row) return row;
  const li = el('li', 'listener');
  li.dataset.testid = 'listener-row';
  li.dataset.listenerId = String(l.id);
  const name = el('span', 'listener-name');
  name.appendChild(el('span', 'proto proto-' + kindOf(l), kindOf(l)));
  name.appendChild(el('span', 'mono', ' ' + l.addr + (l.remote ? ' \u2192 ' + l.remote : '')));
  li.dataset.kind = l.kind || 'listen';
  const meta = el('span', 'listener-meta muted');
  const label = el('label', 'check');
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.dataset.testid = 'listener-echo';
  box.addEventListener('change', () => setEcho(l.id, box.checked));
  label.append(box, document.createTextNode(' echo'));
  const rulesBtn = el('button', 'small', 'rules');
  rulesBtn.type = 'button';
  rulesBtn.title = 'Edit auto-reply rules';
  rulesBtn.dataset.testid = 'listener-rules';
  rulesBtn.addEventListener('click', () => openRules(l.id));
  const linkIn = document.createElement('input');
  linkIn.className = 'listener-link mono';
  linkIn.placeholder = 'link: none';
  linkIn.title = 'Link for new and online sessions: PROFILE[,param=value] (Enter applies)';
  linkIn.setAttribute('list', 'link-profiles');
  linkIn.dataset.testid = 'listener-link';
  linkIn.addEventListener('change', () => setListenerLink(l.id, linkIn.value));
  const remove = el('button', 'row-close', '\u00d7');
  remove.type = 'button';
  remove.title = l.remote ? 'Close this connection' : 'Remove this listener (its online devices are disconnected)';
  remove.dataset.testid = 'listener-remove';
  remove.addEventListener('click', () => removeListener(l, remove));
  li.append(name, remove, meta, label, rulesBtn, linkIn);
  // A TLS listener lists its latest failed handshakes: when, who, why.
  const failures = el('ul', 'tls-failures');
  failures.dataset.testid = 'tls-failures';
  if (l.tls) li.append(failures);
  row = { li, meta, box, linkIn, failures };
  listenerEls.set(l.id, row);
  return row;
}

export function renderListeners() {
  const sorted = [...model.listeners.values()].sort((a, b) => a.id - b.id);
  const key = sorted.map((l) => l.id + ' ' + l.proto + ' ' + l.addr).join('|');
  if (key !== built.key) {
    built.key = key;
    listenerEls.clear();
    const items = sorted.map((l) => listenerRow(l).li);
    if (!items.length) items.push(el('li', 'empty', 'No listeners reported.'));
    $('listener-list').replaceChildren(...items);
    const select = $('broadcast-listener');
    const chosen = select.value;
    const options = [option('', 'all listeners', chosen)];
    for (const l of sorted) options.push(option(String(l.id), kindOf(l) + ' ' + l.addr, chosen));
    select.replaceChildren(...options);
    $('detail-empty-addrs').textContent = sorted.length
      ? 'Devices connect to ' + sorted.map((l) => kindOf(l) + ' ' + l.addr).join('  \u00b7  ')
      : '';
  }
  const onlineBy = new Map();
  for (const s of model.sessions.values()) {
    if (s.online) onlineBy.set(s.listener_id, (onlineBy.get(s.listener_id) || 0) + 1);
  }
  for (const l of sorted) {
    const { li, meta, box, linkIn, failures } = listenerRow(l);
    li.dataset.echo = l.echo ? 'true' : 'false'; // the server's state, not the checkbox's
    li.dataset.link = l.link || '';
    if (document.activeElement !== linkIn) linkIn.value = l.link || '';
    box.checked = !!l.echo;
    const rules = (l.auto_replies || []).length;
    // Every online session is in the model unless the API had more than a page of them.
    const online = model.onlineExtra === 0 ? onlineBy.get(l.id) || 0 : l.online;
    meta.textContent = (typeof online === 'number' ? online + ' online' : '') +
      (rules ? ' \u00b7 ' + rules + ' auto-repl' + (rules === 1 ? 'y' : 'ies') : '') +
      tlsFailures(l.tls);
    const last = l.tls && l.tls.last_failure;
    meta.title = last ? 'Last failed TLS handshake: ' + last.peer + ' at ' + last.ts + ': ' + last.reason : '';
    if (l.tls) renderTlsFailures(failures, model.tlsFailures.get(l.id) || (last ? [last] : []));
  }
}

/** The rows of a TLS listener's latest failed handshakes (time, device address, reason). */
function renderTlsFailures(list, recent) {
  const rows = recent.map((f) => {
    const ms = msOf(f, 'ts');
    const row = el('li', 'tls-failure');
    row.dataset.testid = 'tls-failure';
    row.dataset.peer = f.peer;
    row.dataset.kind = f.kind || '';
    const time = el('span', 'muted', ms != null ? fmtTime(ms) : '');
    if (ms != null) time.title = new Date(ms).toISOString();
    row.append(time, el('span', 'mono', ' ' + f.peer + ' '), el('span', 'tls-failure-reason', f.reason));
    return row;
  });
  list.replaceChildren(...rows);
}

/** "tcp", "udp", or "tls" for a TLS listener. */
export function kindOf(l) {
  return l.tls ? 'tls' : l.proto;
}

/** The failed TLS handshakes of a listener, as its row shows them. */
function tlsFailures(tls) {
  const n = tls ? tls.handshake_failures : 0;
  return n ? ' \u00b7 ' + n + ' failed TLS handshake' + (n === 1 ? '' : 's') : '';
}

// ------------------------------------------------------------------ auto-reply rules

export const MATCH_KINDS = [
  ['exact', 'text equals'],
  ['hex', 'contains hex'],
  ['regex', 'matches regex'],
];

export function option(value, label, selected) {
  const o = el('option', null, label);
  o.value = value;
  o.selected = value === selected;
  return o;
}

/** A rule's pattern as the editor shows it: exact text escaped, hex and regex as they are. */
function patternShown(rule) {
  return (rule.match || 'exact') === 'exact' ? escapeText(rule.pattern || '') : rule.pattern || '';
}

export function ruleRow(rule) {
  const row = el('div', 'rule');
  row.dataset.testid = 'rule-row';
  const match = el('select', 'rule-match');
  match.dataset.testid = 'rule-match';
  match.setAttribute('aria-label', 'Match kind');
  for (const [v, label] of MATCH_KINDS) match.appendChild(option(v, label, rule.match || 'exact'));
  const pattern = el('input', 'rule-pattern mono');
  pattern.dataset.testid = 'rule-pattern';
  pattern.placeholder = 'pattern';
  pattern.value = patternShown(rule);
  pattern.dataset.kind = rule.match || 'exact';
  // Switching between text and the other kinds converts what is shown.
  match.addEventListener('change', () => {
    const was = pattern.dataset.kind;
    const now = match.value;
    try {
      if (was === 'exact' && now !== 'exact') {
        const raw = utf8OrNull(parseEscapes(pattern.value));
        if (now === 'hex') pattern.value = bytesToHex(parseEscapes(pattern.value));
        else if (raw != null && !/[\x00-\x1f]/.test(raw)) pattern.value = raw;
      } else if (was !== 'exact' && now === 'exact' && was === 'hex') {
        pattern.value = escapeBytes(parseHex(pattern.value));
      }
    } catch (e) {
      // Left as typed; Save reports what is wrong.
    }
    pattern.dataset.kind = now;
  });
  const replyMode = el('select', 'rule-reply-mode');
  replyMode.dataset.testid = 'rule-reply-mode';
  replyMode.setAttribute('aria-label', 'Reply format');
  const isHex = rule.reply_hex != null && rule.reply_text == null;
  replyMode.append(option('text', 'reply text', isHex ? 'hex' : 'text'), option('hex', 'reply hex', isHex ? 'hex' : 'text'));
  const reply = el('input', 'rule-reply mono');
  reply.dataset.testid = 'rule-reply';
  reply.placeholder = 'reply';
  reply.value = isHex ? bytesToHex(parseHex(rule.reply_hex || '')) : escapeText(rule.reply_text || '');
  replyMode.addEventListener('change', () => {
    try {
      reply.value = replyMode.value === 'hex' ? bytesToHex(parseEscapes(reply.value)) : escapeBytes(parseHex(reply.value));
    } catch (e) {
      // Left as typed; Save reports what is wrong.
    }
  });
  const remove = el('button', 'row-close', '\u00d7');
  remove.type = 'button';
  remove.title = 'Remove rule';
  remove.dataset.testid = 'rule-remove';
  remove.addEventListener('click', () => row.remove());
  const l1 = el('div', 'rule-line');
  l1.append(match, pattern, remove);
  const l2 = el('div', 'rule-line');
  l2.append(replyMode, reply);
  row.append(l1, l2);
  return row;
}

/** Opens the rule editor of one listener, filled with its current rules, as a dialog. */
export function openRules(id) {
  const l = model.listeners.get(id);
  const box = $('rules-editor');
  if (!l) return;
  box.dataset.listenerId = String(id);
  const head = el('h3', 'rules-head', 'Auto-replies of ' + l.proto + ' ' + l.addr);
  const rows = el('div', 'rules-rows');
  for (const rule of l.auto_replies || []) rows.appendChild(ruleRow(rule));
  const add = el('button', 'link-btn', '+ add rule');
  add.type = 'button';
  add.dataset.testid = 'rule-add';
  add.addEventListener('click', () => rows.appendChild(ruleRow({})));
  const save = el('button', 'primary small', 'Save');
  save.type = 'button';
  save.dataset.testid = 'rules-save';
  save.addEventListener('click', () => saveRules(id, rows, save));
  const cancel = el('button', 'small', 'Cancel');
  cancel.type = 'button';
  cancel.dataset.testid = 'rules-cancel';
  cancel.addEventListener('click', closeRules);
  const actions = el('div', 'rules-actions');
  actions.append(add, cancel, save);
  const framing = framingRow(l.framing || { kind: 'read' });
  const error = el('div', 'rules-error');
  error.dataset.testid = 'rules-error';
  const hint = el('div', 'hint', 'First match answers. Text equals ignores one trailing line end. ' + ESCAPE_HINT + '.');
  box.replaceChildren(head, framing, rows, error, actions, hint);
  if (!box.open) box.showModal();
}

export function closeRules() {
  const box = $('rules-editor');
  if (box.open) box.close();
  box.replaceChildren();
}

/** The editor's framing choice: what the rules test (each read, each line, or frames
 * ending at a delimiter typed with escapes). */
function framingRow(framing) {
  const row = el('div', 'rule-line rules-framing');
  const kind = el('select', 'rules-framing-kind');
  kind.dataset.testid = 'rules-framing';
  kind.setAttribute('aria-label', 'What the rules test');
  kind.append(
    option('read', 'rules test each read as it arrives', framing.kind),
    option('line', 'rules test each line', framing.kind),
    option('delimiter', 'rules test frames ending at', framing.kind),
  );
  const delim = el('input', 'rules-framing-delim mono');
  delim.dataset.testid = 'rules-framing-delim';
  delim.placeholder = 'delimiter, e.g. \\x1a';
  delim.value = framing.delimiter_hex ? escapeBytes(parseHex(framing.delimiter_hex)) : '';
  delim.hidden = framing.kind !== 'delimiter';
  kind.addEventListener('change', () => { delim.hidden = kind.value !== 'delimiter'; });
  row.append(kind, delim);
  return row;
}

/** The API shape of the editor's framing, or an Error saying what is wrong with it. */
function framingOf(box) {
  const kind = box.querySelector('.rules-framing-kind').value;
  if (kind !== 'delimiter') return { kind };
  const bytes = parseEscapes(box.querySelector('.rules-framing-delim').value);
  if (bytes.length < 1 || bytes.length > 16) throw new Error('a delimiter is 1 to 16 bytes');
  return { kind, delimiter_hex: bytesToHex(bytes, '') };
}

/** The API shape of one editor row, or an Error saying what is wrong with it. */
function ruleOf(row) {
  const kind = row.querySelector('.rule-match').value;
  const shown = row.querySelector('.rule-pattern').value;
  let pattern = shown;
  if (kind === 'exact') {
    pattern = utf8OrNull(parseEscapes(shown));
    if (pattern == null) throw new Error('"text equals" needs text; use "contains hex" for other bytes');
  }
  const replyShown = row.querySelector('.rule-reply').value;
  if (row.querySelector('.rule-reply-mode').value === 'hex') {
    return { match: kind, pattern, reply_text: null, reply_hex: bytesToHex(parseHex(replyShown), '') };
  }
  const bytes = parseEscapes(replyShown);
  const text = utf8OrNull(bytes);
  // Bytes that are not UTF-8 go as hex: every byte arrives as typed.
  return text != null
    ? { match: kind, pattern, reply_text: text, reply_hex: null }
    : { match: kind, pattern, reply_text: null, reply_hex: bytesToHex(bytes, '') };
}

export async function saveRules(id, rows, button) {
  const rules = [];
  const box = $('rules-editor');
  const error = box.querySelector('.rules-error');
  let framing;
  try {
    framing = framingOf(box);
    for (const row of rows.querySelectorAll('[data-testid="rule-row"]')) {
      if (!row.querySelector('.rule-pattern').value && !row.querySelector('.rule-reply').value) continue;
      rules.push(ruleOf(row));
    }
  } catch (e) {
    error.textContent = e.message;
    return;
  }
  error.textContent = '';
  button.disabled = true;
  try {
    putListener(await api('PUT', 'api/listeners/' + id + '/auto-replies', { rules, framing }));
    hideError();
    closeRules();
  } catch (e) {
    error.textContent = e.message;
    showError('Saving auto-reply rules', e);
  } finally {
    button.disabled = false;
  }
}

export async function setListenerLink(id, value) {
  try {
    putListener(await api('PUT', 'api/listeners/' + id + '/link', { link: value.trim() || null }));
    hideError();
  } catch (e) {
    showError('Setting the link of listener ' + id, e);
    putListener(null);
  }
}

/** Frame renderer: the listener list and the broadcast menu. */
export function renderListenersIfDirty() {
  if (dirty.listeners) {
    dirty.listeners = false;
    renderListeners();
  }
}
