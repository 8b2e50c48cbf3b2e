// socklab dashboard view: searching the history (GET /api/messages) over all sessions or the
// selected one, exporting the result (GET /api/export), and deleting history before a time.
// A search pins its result with the max_id of its first page, so more pages stay correct
// while devices keep sending; "search again" takes in what arrived since.

import { api, showError, tokenQuery } from './api.js';
import { escapeBytes, hexToBytes } from './bytes.js';
import { dropSessions, loadCounts, loadSessions, select } from './model.js';
import { $, el, fmtInt, fmtTime, log, model, msOf } from './state.js';

/** Results fetched per page. */
export const SEARCH_PAGE = 50;

/** The search on screen: its query string (without paging) and how far it has loaded. */
const current = { query: null, maxId: null, loaded: 0, total: 0, gen: 0 };

/** The query string of the form: kind (q, hex, regex, label) and scope. */
export function searchQuery() {
  const text = $('search-input').value;
  const params = new URLSearchParams();
  if (text.trim()) params.set($('search-kind').value, $('search-kind').value === 'label' ? text.trim() : text);
  if ($('search-scope').value === 'session' && log.sid != null) params.set('session', String(log.sid));
  return params.toString();
}

function resultRow(m, labels) {
  const li = el('li', 'search-row ' + (m.direction === 'up' ? 'up' : 'down'));
  li.dataset.testid = 'search-result';
  li.dataset.sessionId = String(m.session_id);
  li.tabIndex = 0;
  const label = labels.get(m.session_id);
  li.appendChild(el('span', 'sid', '#' + m.session_id + (label ? ' ' + label : '')));
  li.appendChild(el('span', 'muted', ' ' + fmtTime(msOf(m, 'ts')) + ' ' + (m.direction === 'up' ? '\u2191' : '\u2193') + ' '));
  const payload = el('span', 'mono payload');
  payload.dataset.testid = 'search-payload';
  payload.textContent = escapeBytes(hexToBytes((m.hex || '').slice(0, 512)));
  li.appendChild(payload);
  const open = () => select(/^\d+$/.test(String(m.session_id)) ? Number(m.session_id) : m.session_id);
  li.addEventListener('click', open);
  li.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') open();
  });
  return li;
}

/** Labels of the sessions in a page of results, from what the dashboard already knows. */
function knownLabels(messages, sessions) {
  const out = new Map();
  for (const m of messages) {
    const s = sessions.get(m.session_id);
    if (s && s.label) out.set(m.session_id, s.label);
  }
  return out;
}

/** Runs the form's search from its first page (or, with `more`, loads the next page). */
export async function runSearch(sessions, more = false) {
  if (!more) {
    current.query = searchQuery();
    current.maxId = null;
    current.loaded = 0;
    current.gen += 1;
    $('search-results').replaceChildren();
  }
  const gen = current.gen;
  let path = 'api/messages?limit=' + SEARCH_PAGE + '&offset=' + current.loaded;
  if (current.query) path += '&' + current.query;
  if (current.maxId != null) path += '&max_id=' + current.maxId;
  try {
    const r = await api('GET', path);
    if (gen !== current.gen) return;
    if (current.maxId == null) current.maxId = r.max_id;
    current.total = r.total;
    const labels = knownLabels(r.messages || [], sessions);
    const frag = document.createDocumentFragment();
    for (const m of r.messages || []) frag.appendChild(resultRow(m, labels));
    $('search-results').appendChild(frag);
    current.loaded += (r.messages || []).length;
    $('search-info').textContent =
      fmtInt(current.total) + ' message' + (current.total === 1 ? '' : 's') + ' found, newest first' +
      (current.loaded < current.total ? ' (showing ' + fmtInt(current.loaded) + ')' : '');
    $('search-info').dataset.total = String(current.total);
    $('search-more').hidden = current.loaded >= current.total;
    updateSearchExport();
  } catch (e) {
    showError('Searching', e);
  }
}

/** The export link of the current search, in the chosen format. */
export function updateSearchExport() {
  const a = $('search-export');
  if (current.query == null) {
    a.hidden = true;
    return;
  }
  const fmt = $('search-export-format').value;
  let q = 'format=' + fmt + (current.query ? '&' + current.query : '');
  if (current.maxId != null) q += '&max_id=' + current.maxId;
  a.href = 'api/export?' + q + tokenQuery('&');
  a.hidden = false;
}

/** Deletes the history before the time in the form, after the user confirms. */
export async function deleteBefore() {
  const value = $('delete-before').value;
  const ms = Date.parse(value + (value.length <= 16 ? ':00Z' : 'Z'));
  if (!value || Number.isNaN(ms)) {
    showError('Deleting history', new Error('choose a date and time (UTC) first'));
    return;
  }
  const when = new Date(ms).toISOString();
  if (!window.confirm('Delete every message older than ' + when + ' and every session that ended before it?\nOnline devices stay connected. This cannot be undone.')) return;
  try {
    const r = await api('DELETE', 'api/messages?before_ms=' + ms);
    $('delete-before-result').textContent =
      'Deleted ' + fmtInt(r.deleted.messages) + ' messages and ' + fmtInt(r.deleted.sessions) + ' sessions.';
    // Sessions that ended before the time are gone from history.
    const gone = [];
    for (const s of model.sessions.values()) {
      if (!s.online && typeof s.ended_at_ms === 'number' && s.ended_at_ms < ms) gone.push(s.id);
    }
    if (gone.includes(log.sid)) select(null);
    dropSessions(gone);
    loadSessions(true);
    loadCounts();
  } catch (e) {
    showError('Deleting history', e);
  }
}
