// socklab dashboard view: the send and broadcast boxes, and link/fault controls of the
// selected session. What is typed becomes bytes here (escapes, hex, line endings) and goes
// to the API as hex, so the device receives exactly those bytes.

import { api, hideError, showError } from './api.js';
import { payloadBody } from './bytes.js';
import { schedule } from './frame.js';
import { putSession } from './model.js';
import { $, fmtInt, log } from './state.js';

// ------------------------------------------------------------------ operator actions

export async function sendToSelected() {
  const sid = log.sid;
  if (sid == null) return;
  let body;
  try {
    body = payloadBody($('send-mode').value, $('send-input').value, $('send-eol').value);
  } catch (e) {
    showError('Send', e);
    return;
  }
  const button = $('send-button');
  button.disabled = true;
  try {
    const r = await api('POST', 'api/sessions/' + sid + '/send', body);
    hideError();
    $('send-input').dataset.lastSent = String(r && r.bytes != null ? r.bytes : '');
    $('send-preview').textContent = '';
  } catch (e) {
    showError('Sending to session #' + sid, e);
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ link emulation

export async function setSessionLink() {
  const sid = log.sid;
  if (sid == null) return;
  const value = $('link-input').value.trim();
  try {
    const s = await api('PUT', 'api/sessions/' + sid + '/link', { link: value || null });
    hideError();
    if (s && s.id != null) putSession(s, true);
    $('link-input').dataset.sid = '';
    schedule();
  } catch (e) {
    showError('Setting the link of session #' + sid, e);
  }
}

export async function injectFault(body) {
  const sid = log.sid;
  if (sid == null) return;
  try {
    const s = await api('POST', 'api/sessions/' + sid + '/fault', body);
    hideError();
    if (s && s.id != null) putSession(s, true);
    schedule();
  } catch (e) {
    showError('Injecting ' + body.fault + ' into session #' + sid, e);
  }
}

export async function broadcast() {
  let body;
  try {
    body = payloadBody($('broadcast-mode').value, $('broadcast-input').value, $('broadcast-eol').value);
  } catch (e) {
    showError('Broadcast', e);
    return;
  }
  const lid = $('broadcast-listener').value;
  if (lid !== '') body.listener_id = Number(lid);
  const result = $('broadcast-result');
  const button = $('broadcast-send');
  button.disabled = true;
  try {
    const r = await api('POST', 'api/broadcast', body);
    const n = r && typeof r.sessions === 'number' ? r.sessions : 0;
    result.textContent = 'Sent to ' + n + ' session' + (n === 1 ? '' : 's') +
      (r && typeof r.bytes === 'number' ? ', ' + fmtInt(r.bytes) + ' bytes in total' : '') + '.';
    result.dataset.sessions = String(n);
    hideError();
  } catch (e) {
    result.textContent = '';
    showError('Broadcast', e);
  } finally {
    button.disabled = false;
  }
}

export function submitOnEnter(textarea, form) {
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
}

/** Shows under a send box how many bytes it would send, or what is wrong with it. */
export function previewPayload(modeEl, inputEl, eolEl, outEl) {
  const update = () => {
    if (!inputEl.value) {
      outEl.textContent = '';
      outEl.dataset.state = '';
      return;
    }
    try {
      const body = payloadBody(modeEl.value, inputEl.value, eolEl ? eolEl.value : 'none');
      const n = body.hex.length / 2;
      outEl.textContent = n + ' byte' + (n === 1 ? '' : 's');
      outEl.dataset.state = 'ok';
    } catch (e) {
      outEl.textContent = e.message;
      outEl.dataset.state = 'error';
    }
  };
  for (const e of [modeEl, inputEl, eolEl]) if (e) e.addEventListener(e === inputEl ? 'input' : 'change', update);
  return update;
}
