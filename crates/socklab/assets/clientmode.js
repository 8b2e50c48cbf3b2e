// socklab dashboard view: client mode and listeners at run time. "Connect to device" opens
// a session to a device that is the server (the new session is selected like any other);
// "Add listener" binds one while socklab runs. Removing a listener is on its row
// (listeners.js).

import { api, hideError } from './api.js';
import { putListener, putSession, select } from './model.js';
import { $ } from './state.js';

/** Shows the outcome of a form under it: `ok` false marks it as an error. */
function result(id, text, ok) {
  const out = $(id);
  out.textContent = text;
  out.dataset.state = ok ? 'ok' : 'error';
}

/** Submits the "Connect to device" form: POST /api/connect, then selects the session. */
export async function connectToDevice() {
  const addr = $('connect-addr').value.trim();
  if (!addr) {
    result('connect-result', 'Give the device address, HOST:PORT', false);
    return;
  }
  const button = $('connect-submit');
  button.disabled = true;
  result('connect-result', 'connecting to ' + addr + '\u2026', true);
  try {
    const s = await api('POST', 'api/connect', { addr, proto: $('connect-proto').value });
    putSession(s, true);
    select(s.id);
    hideError();
    result('connect-result', 'Connected: session #' + s.id + ' (' + s.proto + ' ' + s.local + ' \u2192 ' + s.peer + ')', true);
  } catch (e) {
    result('connect-result', e.message, false);
  } finally {
    button.disabled = false;
  }
}

/** Submits the "Add listener" form: POST /api/listeners. */
export async function addListener() {
  const addr = $('listen-addr').value.trim() || '127.0.0.1:0';
  const button = $('listen-submit');
  button.disabled = true;
  try {
    const l = await api('POST', 'api/listeners', { proto: $('listen-proto').value, addr });
    putListener(l);
    hideError();
    result('listen-result', 'Listening: ' + l.proto + ' ' + l.addr + ' (listener ' + l.id + ')', true);
  } catch (e) {
    result('listen-result', e.message, false);
  } finally {
    button.disabled = false;
  }
}

/** Wires both forms. */
export function initClientMode() {
  $('connect-form').addEventListener('submit', (e) => {
    e.preventDefault();
    connectToDevice();
  });
  $('listen-form').addEventListener('submit', (e) => {
    e.preventDefault();
    addListener();
  });
}
