// socklab dashboard view: saved send snippets and periodic sends ("send every N ms").
//
// Snippets are saved from their own small form (text with the console's escapes, or hex)
// and sent by name to the selected session. "Send every" starts a periodic send with what
// the send box or the broadcast box holds; the periodic list shows every running one with
// a Stop button, kept current by the live `periodic` events and a light refresh of the
// counters while any run.

import { api, hideError, showError } from './api.js';
import { bytesToHex, escapeBytes, hexToBytes, payloadBody, payloadBytes } from './bytes.js';
import { onFrame } from './frame.js';
import { $, el, fmtInt, log, model } from './state.js';

/** The server's bounds, repeated here only to say so before asking it. */
export const MIN_EVERY_MS = 100;
/** How long a delete button waits for its confirming second click. */
export const CONFIRM_MS = 4000;
/** How often the periodic counters are refreshed while some run. */
export const PERIODIC_REFRESH_MS = 2000;

const snip = { list: [], periodic: new Map(), timer: null };

// ------------------------------------------------------------------ snippets

export async function loadSnippets() {
  try {
    const r = await api('GET', 'api/snippets');
    snip.list = r && Array.isArray(r.snippets) ? r.snippets : [];
    renderSnippets();
  } catch (e) {
    showError('Loading snippets', e);
  }
}

function snippetRow(s) {
  const li = el('li', 'snippet');
  li.dataset.testid = 'snippet-row';
  li.dataset.name = s.name;
  li.appendChild(el('span', 'snippet-name mono', s.name));
  const preview = el('span', 'snippet-preview mono muted', escapeBytes(hexToBytes(s.hex || '')));
  preview.title = s.len + ' bytes: ' + (s.hex || '');
  li.appendChild(preview);
  const send = el('button', 'small', 'Send');
  send.type = 'button';
  send.dataset.testid = 'snippet-send';
  send.title = 'Send to the selected device';
  send.addEventListener('click', () => sendSnippet(s.name));
  const every = el('button', 'small', 'Every');
  every.type = 'button';
  every.dataset.testid = 'snippet-every';
  every.title = 'Send to the selected device every N ms (the interval beside the send box)';
  every.addEventListener('click', () => startSessionPeriodic({ snippet: s.name }));
  const del = el('button', 'small danger', '\u00d7');
  del.type = 'button';
  del.dataset.testid = 'snippet-delete';
  del.title = 'Delete this snippet';
  del.setAttribute('aria-label', 'Delete snippet ' + s.name);
  // Two clicks delete: the first turns the button into a question for a few seconds.
  del.addEventListener('click', () => {
    if (del.dataset.armed === 'true') {
      deleteSnippet(s.name);
      return;
    }
    del.dataset.armed = 'true';
    del.textContent = 'Delete?';
    setTimeout(() => {
      del.dataset.armed = '';
      del.textContent = '\u00d7';
    }, CONFIRM_MS);
  });
  li.append(send, every, del);
  return li;
}

export function renderSnippets() {
  const items = snip.list.map(snippetRow);
  $('snippet-list').replaceChildren(...items);
  $('snippet-empty').hidden = items.length > 0;
  syncButtons();
}

export async function saveSnippet() {
  const name = $('snippet-name').value.trim();
  let bytes;
  try {
    if (!name) throw new Error('give the snippet a name');
    bytes = payloadBytes($('snippet-mode').value, $('snippet-input').value, 'none');
  } catch (e) {
    showError('Saving a snippet', e);
    return;
  }
  await postSnippet({ name, hex: bytesToHex(bytes, '') });
}

/** Saves; a taken name is not replaced until the operator confirms with the Replace
 * button offered in its place. */
async function postSnippet(body) {
  const result = $('snippet-result');
  try {
    await api('POST', 'api/snippets', body);
    hideError();
    result.replaceChildren(document.createTextNode('Saved "' + body.name + '".'));
    $('snippet-input').value = '';
    $('snippet-name').value = '';
    await loadSnippets();
  } catch (e) {
    if (e.status === 409 && !body.replace) {
      const replace = el('button', 'small', 'Replace');
      replace.type = 'button';
      replace.dataset.testid = 'snippet-replace';
      replace.addEventListener('click', () => postSnippet({ ...body, replace: true }));
      result.replaceChildren(document.createTextNode('A snippet "' + body.name + '" exists. '), replace);
      return;
    }
    showError('Saving snippet "' + body.name + '"', e);
  }
}

export async function deleteSnippet(name) {
  try {
    await api('DELETE', 'api/snippets/' + encodeURIComponent(name));
    hideError();
  } catch (e) {
    showError('Deleting snippet "' + name + '"', e);
  }
  await loadSnippets();
}

export async function sendSnippet(name) {
  const sid = log.sid;
  if (sid == null) {
    showError('Sending snippet "' + name + '"', new Error('select a device first'));
    return;
  }
  try {
    const r = await api('POST', 'api/sessions/' + sid + '/send', { snippet: name });
    hideError();
    $('snippet-result').textContent = 'Sent "' + name + '" (' + fmtInt(r && r.bytes) + ' bytes) to #' + sid + '.';
  } catch (e) {
    showError('Sending snippet "' + name + '" to session #' + sid, e);
  }
}

// ------------------------------------------------------------------ periodic sends

function everyMs(inputId) {
  const ms = Number($(inputId).value);
  if (!Number.isInteger(ms) || ms < MIN_EVERY_MS) {
    throw new Error('the interval must be a whole number of milliseconds, at least ' + MIN_EVERY_MS);
  }
  return ms;
}

/** Starts a periodic send to the selected session; `payload` is {snippet} or, by default,
 * what the send box holds. */
export async function startSessionPeriodic(payload) {
  const sid = log.sid;
  if (sid == null) {
    showError('Send every', new Error('select a device first'));
    return;
  }
  let body;
  try {
    body = payload || payloadBody($('send-mode').value, $('send-input').value, $('send-eol').value);
    body = { ...body, every_ms: everyMs('periodic-ms') };
  } catch (e) {
    showError('Send every', e);
    return;
  }
  try {
    putPeriodic(await api('POST', 'api/sessions/' + sid + '/periodic', body));
    hideError();
  } catch (e) {
    showError('Sending to session #' + sid + ' every ' + body.every_ms + ' ms', e);
  }
}

/** Starts a periodic broadcast with what the broadcast box holds. */
export async function startBroadcastPeriodic() {
  let body;
  try {
    body = payloadBody($('broadcast-mode').value, $('broadcast-input').value, $('broadcast-eol').value);
    body.every_ms = everyMs('broadcast-every-ms');
  } catch (e) {
    showError('Broadcast every', e);
    return;
  }
  const lid = $('broadcast-listener').value;
  if (lid !== '') body.listener_id = Number(lid);
  try {
    putPeriodic(await api('POST', 'api/broadcast/periodic', body));
    hideError();
  } catch (e) {
    showError('Broadcasting every ' + body.every_ms + ' ms', e);
  }
}

export async function stopPeriodic(id) {
  try {
    await api('DELETE', 'api/periodic/' + encodeURIComponent(id));
    hideError();
  } catch (e) {
    // Gone already (it stopped by itself): the list catches up below.
    if (e.status !== 404) showError('Stopping periodic send ' + id, e);
  }
  snip.periodic.delete(String(id));
  renderPeriodic();
}

export async function loadPeriodic() {
  try {
    const r = await api('GET', 'api/periodic');
    // This node's list; on a cluster, ones running on other nodes (NODE:ID, known from
    // their events) stay until their stop event comes.
    for (const id of [...snip.periodic.keys()]) if (!id.includes(':')) snip.periodic.delete(id);
    for (const p of (r && r.periodic) || []) snip.periodic.set(String(p.id), p);
    renderPeriodic();
  } catch (e) {
    showError('Loading periodic sends', e);
  }
}

function putPeriodic(p) {
  if (!p || p.id == null) return;
  snip.periodic.set(String(p.id), p);
  renderPeriodic();
}

/** A live `periodic` event: started and skipping update the list, stopped removes. */
export function onPeriodicEvent(ev) {
  let p = ev && ev.periodic;
  if (!p || p.id == null) return;
  // Another node's periodic send (cluster): stopped through this node as NODE:ID.
  if (ev.node && !String(p.id).includes(':')) p = { ...p, id: ev.node + ':' + p.id };
  if (ev.action === 'stopped') {
    snip.periodic.delete(String(p.id));
    const why = String(ev.reason || 'stopped').replace(/_/g, ' ');
    $('periodic-note').textContent = 'Periodic send ' + p.id + ' stopped: ' + why + ' (sent ' + fmtInt(p.sent) + ').';
    renderPeriodic();
  } else putPeriodic(p);
}

function targetText(p) {
  if (p.target === 'session') return '#' + p.session_id;
  return p.listener_id == null ? 'all devices' : 'all of listener ' + p.listener_id;
}

function periodicRow(p) {
  const li = el('li', 'periodic');
  li.dataset.testid = 'periodic-row';
  li.dataset.periodicId = String(p.id);
  const what = p.snippet ? '"' + p.snippet + '"' : escapeBytes(hexToBytes(p.hex || ''));
  li.appendChild(el('span', 'mono', what));
  li.appendChild(el('span', 'muted', ' \u2192 ' + targetText(p) + ' every ' + fmtInt(p.every_ms) + ' ms'));
  const counts = el('span', 'periodic-counts muted', ' sent ' + fmtInt(p.sent) + (p.skipped ? ', skipped ' + fmtInt(p.skipped) : ''));
  counts.dataset.testid = 'periodic-counts';
  li.appendChild(counts);
  const stop = el('button', 'small danger', 'Stop');
  stop.type = 'button';
  stop.dataset.testid = 'periodic-stop';
  stop.addEventListener('click', () => stopPeriodic(p.id));
  li.appendChild(stop);
  return li;
}

export function renderPeriodic() {
  const all = [...snip.periodic.values()].sort((a, b) => String(a.id).localeCompare(String(b.id), undefined, { numeric: true }));
  $('periodic-list').replaceChildren(...all.map(periodicRow));
  $('periodic-empty').hidden = all.length > 0;
  // Counters move without events: refresh them now and then while something runs.
  if (all.length && !snip.timer) {
    snip.timer = setInterval(() => {
      if (!document.hidden) loadPeriodic();
    }, PERIODIC_REFRESH_MS);
  } else if (!all.length && snip.timer) {
    clearInterval(snip.timer);
    snip.timer = null;
  }
}

/** Per frame: the buttons that act on the selected session follow its state. */
function syncButtons() {
  const s = log.sid == null ? null : model.sessions.get(log.sid);
  const online = !!(s && s.online);
  $('periodic-start').disabled = !online;
  for (const b of document.querySelectorAll('[data-testid="snippet-send"], [data-testid="snippet-every"]')) b.disabled = !online;
}

export function initSnippets() {
  $('snippet-form').addEventListener('submit', (e) => {
    e.preventDefault();
    saveSnippet();
  });
  $('periodic-start').addEventListener('click', () => startSessionPeriodic(null));
  $('broadcast-every').addEventListener('click', startBroadcastPeriodic);
  onFrame(syncButtons);
  loadSnippets();
  loadPeriodic();
}
