// socklab dashboard: the JSON API (token, fetch, errors) and the error banner. Nothing else.

import { $ } from './state.js';

/** Token from the page URL (?token=...), sent on every API call and on the event stream. */
export const TOKEN = new URLSearchParams(location.search).get('token');

// ------------------------------------------------------------------ API

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** One JSON API call; a non-2xx answer becomes an ApiError carrying the server's message. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (TOKEN) headers.Authorization = 'Bearer ' + TOKEN;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'server unreachable');
  }
  const raw = await resp.text();
  let data = null;
  if (raw) {
    try {
      data = JSON.parse(raw);
    } catch (e) {
      data = null;
    }
  }
  if (!resp.ok) {
    const msg = data && typeof data.error === 'string' ? data.error : raw.trim() || resp.statusText;
    throw new ApiError(resp.status, msg);
  }
  return data;
}

const banner = { timer: null };

/** Shows an API failure in the banner: what was attempted, the server's message, the status. */
export function showError(what, err) {
  const status = err && err.status ? ' (HTTP ' + err.status + ')' : '';
  const msg = err && err.message ? err.message : String(err);
  $('error-text').textContent = what + ': ' + msg + status;
  $('error').dataset.status = err && err.status ? String(err.status) : '';
  $('error').hidden = false;
  clearTimeout(banner.timer);
  banner.timer = setTimeout(hideError, 15000);
}

/** The token as a query string for URLs the browser opens itself (downloads, streams). */
export const tokenQuery = (sep = '?') => (TOKEN ? sep + 'token=' + encodeURIComponent(TOKEN) : '');

export function hideError() {
  $('error').hidden = true;
}
