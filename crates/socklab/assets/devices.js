// socklab dashboard view: the selected device's label, rates, export link and history
// deletion (with a confirmation dialog). Labels are set with PUT /api/sessions/{id}/label.

import { api, showError, tokenQuery } from './api.js';
import { schedule } from './frame.js';
import { dropSessions, putSession, select } from './model.js';
import { $, dirty, fmtBytes, log, model } from './state.js';

/** How often the selected online session is asked for its rates (events only come with traffic). */
export const RATE_POLL_MS = 2000;

/** Saves the label typed into the detail panel (empty removes it). */
export async function saveLabel() {
  const sid = log.sid;
  if (sid == null) return;
  try {
    const s = await api('PUT', 'api/sessions/' + sid + '/label', { label: $('label-input').value });
    putSession(s, true);
    $('label-input').dataset.sid = '';
    schedule();
  } catch (e) {
    showError('Labelling session #' + sid, e);
  }
}

/** Deletes the selected session's history after the user confirms. */
export async function deleteHistory() {
  const sid = log.sid;
  const s = sid != null ? model.sessions.get(sid) : null;
  if (!s) return;
  const what = s.online
    ? 'Delete the stored messages of session #' + sid + '?\nThe device stays connected and new messages are still recorded.'
    : 'Delete session #' + sid + ' and all its messages?';
  if (!window.confirm(what + '\nThis cannot be undone.')) return;
  try {
    if (s.online) {
      await api('DELETE', 'api/sessions/' + sid + '/messages');
      // Show the (now empty) history again, without the live messages remembered for it.
      model.recent.delete(sid);
      log.sid = null;
      select(sid);
    } else {
      await api('DELETE', 'api/sessions/' + sid);
      select(null);
      dropSessions([sid]);
    }
  } catch (e) {
    showError('Deleting the history of session #' + sid, e);
  }
}

const rate = (n) => fmtBytes(n || 0) + '/s';

/** Frame renderer: label, rates and export link of the selected session. */
export function renderDeviceExtras() {
  if (!dirty.detail || log.sid == null) return;
  const s = model.sessions.get(log.sid);
  if (!s) return;
  const chip = $('detail-label');
  chip.textContent = s.label || '';
  chip.hidden = !s.label;
  const input = $('label-input');
  if (document.activeElement !== input && input.dataset.sid !== String(s.id)) {
    input.dataset.sid = String(s.id);
    input.value = s.label || '';
  }
  const r = s.online ? s.rates : null;
  $('detail-rate').textContent = r
    ? '\u2191 ' + rate(r.bytes_up_per_s) + '  \u2193 ' + rate(r.bytes_down_per_s) +
      '  (' + (r.msgs_up_per_s || 0).toFixed(1) + ' / ' + (r.msgs_down_per_s || 0).toFixed(1) + ' msg/s)'
    : '\u2014';
  $('detail-export').href =
    'api/export?format=' + $('detail-export-format').value + '&session=' + encodeURIComponent(String(s.id)) + tokenQuery('&');
  $('detail-delete').textContent = s.online ? 'Delete messages' : 'Delete session';
}

/** Refreshes the selected online session now and then, so its rates fall to zero when it is quiet. */
export function pollSelectedRates() {
  setInterval(async () => {
    const sid = log.sid;
    const s = sid != null ? model.sessions.get(sid) : null;
    if (!s || !s.online || document.hidden) return;
    try {
      const fresh = await api('GET', 'api/sessions/' + sid);
      putSession(fresh, false);
      schedule();
    } catch (e) {
      // The next event or poll brings it.
    }
  }, RATE_POLL_MS);
}
