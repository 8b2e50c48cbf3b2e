// socklab dashboard: plain JavaScript, no build step, no external resources.
//
// Data flow: the live event stream (/api/events, Server-Sent Events) and the JSON API feed one
// in-memory model (sessions, the selected session's log, totals, throughput buckets). Handlers
// only update the model and mark what changed; one flush per animation frame writes the DOM, so
// a device sending thousands of messages per second costs one layout per frame, not one per
// message. Device payloads are only ever written with textContent: nothing a device sends is
// parsed as HTML.
'use strict';

(function () {
  /** Token from the page URL (?token=...), sent on every API call and on the event stream. */
  const TOKEN = new URLSearchParams(location.search).get('token');
  /** Rows kept in the rendered log; older messages stay loadable through the messages API. */
  const LOG_CAP = 500;
  /** Messages fetched per API page. */
  const MSG_PAGE = 500;
  /** Sessions fetched per API page. */
  const SESSION_PAGE = 200;
  /** Session rows rendered at most; the newest are shown first. */
  const SESSION_RENDER_CAP = 500;
  /** Recent live messages remembered per unselected session (covers a store that lags behind). */
  const RECENT_PER_SESSION = 50;
  /** Sessions whose recent messages are remembered (least recently active ones are dropped). */
  const RECENT_SESSIONS = 200;
  /** Bytes of one payload rendered at most (the rest is summarised). */
  const PAYLOAD_SHOW_MAX = 4096;
  /** Seconds of history in the throughput chart. */
  const CHART_SECONDS = 60;
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 10000;

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ model

  const model = {
    sessions: new Map(), // id -> Session object from the API / events
    filter: 'all', // 'online' | 'all'
    pageOffset: 0, // sessions fetched from the API for the current filter
    pageTotal: 0, // total the API reported for the current filter
    onlineInMap: 0, // sessions in `sessions` that are online (kept up to date by putSession)
    onlineExtra: 0, // online sessions the API reported but that were not fetched (beyond a page)
    sessionExtra: 0, // sessions the API reported that are not in `sessions`
    listeners: new Map(),
    totals: { up: 0, down: 0 },
    statsSeenAt: 0, // last time a {"type":"stats"} event arrived (then totals come from it)
    recent: new Map(), // session id -> last few live messages
    view: 'text', // payload rendering: 'text' | 'hex'
  };

  /** The selected session's log. `gen` invalidates fetches started for an older selection. */
  const log = {
    sid: null,
    gen: 0,
    loading: false,
    buffer: [], // live messages that arrived while the history was loading
    entries: [], // [{m, el, payloadEl}] in display order
    ids: new Set(),
    start: 0, // index of the first rendered message in the session's full history
    cap: LOG_CAP,
    pending: [], // live messages waiting for the next frame
  };

  const dirty = { list: false, rows: new Set(), detail: false, totals: false, listeners: false };
  let frameQueued = false;

  // ------------------------------------------------------------------ formatting

  const HEX = '0123456789abcdef';
  const hex2 = (b) => HEX[b >> 4] + HEX[b & 15];

  function hexToBytes(hex) {
    const clean = hex.length % 2 ? hex.slice(0, -1) : hex;
    const out = new Uint8Array(clean.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
    return out;
  }

  /**
   * Keeps only what can be rendered of a message: a device's 64 KiB reads would otherwise
   * pin megabytes per log row. `len` keeps the full size for the "+N bytes" note.
   */
  function slim(m) {
    if (typeof m.len !== 'number') m.len = typeof m.hex === 'string' ? m.hex.length >> 1 : (m.text || '').length;
    if (typeof m.hex === 'string') {
      if (m.hex.length > 2 * PAYLOAD_SHOW_MAX) m.hex = m.hex.slice(0, 2 * PAYLOAD_SHOW_MAX);
      m.text = undefined;
    }
    return m;
  }

  function messageBytes(m) {
    if (!m._bytes) {
      m._bytes = typeof m.hex === 'string' ? hexToBytes(m.hex) : new TextEncoder().encode(m.text || '');
    }
    return m._bytes;
  }

  /** Code points shown escaped although valid UTF-8: invisible or reordering characters. */
  function invisible(cp) {
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
  function escapeBytes(b) {
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

  function bytesToHex(b) {
    const parts = new Array(b.length);
    for (let i = 0; i < b.length; i++) parts[i] = hex2(b[i]);
    return parts.join(' ');
  }

  function fmtBytes(n) {
    if (!Number.isFinite(n)) return '0 B';
    if (n < 1024) return Math.round(n) + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024;
    let u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u += 1;
    }
    return (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[u];
  }

  // Thousands separators without toLocaleString (measurably slow at thousands of rows/s).
  const fmtInt = (n) => String(Math.round(Number(n) || 0)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const pad = (n, w) => String(n).padStart(w, '0');

  function msOf(obj, key) {
    const ms = obj[key + '_ms'];
    if (typeof ms === 'number') return ms;
    const parsed = Date.parse(obj[key] || '');
    return Number.isNaN(parsed) ? null : parsed;
  }

  function fmtTime(ms) {
    const d = new Date(ms);
    return pad(d.getHours(), 2) + ':' + pad(d.getMinutes(), 2) + ':' + pad(d.getSeconds(), 2) +
      '.' + pad(d.getMilliseconds(), 3);
  }

  function fmtDateTime(ms) {
    if (ms == null) return '\u2014';
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1, 2) + '-' + pad(d.getDate(), 2) + ' ' + fmtTime(ms);
  }

  const reasonText = (r) => (r ? String(r).replace(/_/g, ' ') : '');

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** One JSON API call; a non-2xx answer becomes an ApiError carrying the server's message. */
  async function api(method, path, body) {
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

  let errorTimer = null;

  /** Shows an API failure in the banner: what was attempted, the server's message, the status. */
  function showError(what, err) {
    const status = err && err.status ? ' (HTTP ' + err.status + ')' : '';
    const msg = err && err.message ? err.message : String(err);
    $('error-text').textContent = what + ': ' + msg + status;
    $('error').dataset.status = err && err.status ? String(err.status) : '';
    $('error').hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(hideError, 15000);
  }

  function hideError() {
    $('error').hidden = true;
  }

  // ------------------------------------------------------------------ sessions

  /** Prefers the fresher of two snapshots of one session (offline is final; counters only grow). */
  function fresher(a, b) {
    if (!a) return b;
    if (a.online === false && b.online !== false) return a;
    if (b.online === false && a.online !== false) return b;
    const wa = (a.bytes_up || 0) + (a.bytes_down || 0) + (a.msgs_up || 0) + (a.msgs_down || 0);
    const wb = (b.bytes_up || 0) + (b.bytes_down || 0) + (b.msgs_up || 0) + (b.msgs_down || 0);
    return wb >= wa ? b : a;
  }

  /** Stores a session snapshot. `authoritative` snapshots (from events) replace older ones. */
  function putSession(s, authoritative) {
    const old = model.sessions.get(s.id);
    const next = authoritative ? s : fresher(old, s);
    model.sessions.set(s.id, next);
    const wasOnline = !!(old && old.online);
    if (wasOnline !== !!next.online) {
      model.onlineInMap += next.online ? 1 : -1;
      dirty.listeners = true;
    }
    if (!old || old.online !== next.online) dirty.list = true;
    dirty.rows.add(s.id);
    if (s.id === log.sid) dirty.detail = true;
    dirty.totals = true;
    return old;
  }

  function visibleSessions() {
    const out = [];
    for (const s of model.sessions.values()) {
      if (model.filter === 'all' || s.online || s.id === log.sid) out.push(s);
    }
    out.sort((a, b) => b.id - a.id);
    return out;
  }

  async function loadSessions(reset) {
    const filter = model.filter;
    const offset = reset ? 0 : model.pageOffset;
    try {
      const r = await api('GET', 'api/sessions?state=' + filter + '&limit=' + SESSION_PAGE + '&offset=' + offset);
      if (filter !== model.filter) return;
      for (const s of r.sessions || []) putSession(s, false);
      model.pageOffset = offset + (r.sessions || []).length;
      model.pageTotal = typeof r.total === 'number' ? r.total : model.pageOffset;
      dirty.list = true;
      dirty.totals = true;
      schedule();
    } catch (e) {
      showError('Loading sessions', e);
    }
  }

  /** Counts for the header: online and total sessions straight from the API. */
  async function loadCounts() {
    try {
      const [on, all] = await Promise.all([
        api('GET', 'api/sessions?state=online&limit=' + SESSION_PAGE + '&offset=0'),
        api('GET', 'api/sessions?state=all&limit=1&offset=0'),
      ]);
      const onlineIds = new Set();
      for (const s of on.sessions || []) {
        onlineIds.add(s.id);
        putSession(s, false);
      }
      const onTotal = typeof on.total === 'number' ? on.total : onlineIds.size;
      model.onlineExtra = Math.max(0, onTotal - onlineIds.size);
      const allTotal = typeof all.total === 'number' ? all.total : 0;
      model.sessionExtra = Math.max(0, allTotal - model.sessions.size);
      // After a reconnect, sessions we still think online may have ended meanwhile: ask for
      // each (an offline answer wins in putSession; a newer online one changes nothing).
      if ((on.sessions || []).length >= onTotal) {
        const stale = [];
        for (const s of model.sessions.values()) if (s.online && !onlineIds.has(s.id)) stale.push(s.id);
        for (const id of stale.slice(0, 100)) {
          api('GET', 'api/sessions/' + id).then((fresh) => {
            putSession(fresh, false);
            schedule();
          }).catch(() => {});
        }
      }
      dirty.totals = true;
      schedule();
    } catch (e) {
      showError('Loading sessions', e);
    }
  }

  /** Byte totals from the Prometheus endpoint, when it offers socklab_bytes_total. */
  async function loadTotals() {
    try {
      const headers = TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {};
      const resp = await fetch('metrics', { headers, cache: 'no-store' });
      if (!resp.ok) return;
      const text = await resp.text();
      const grab = (dir) => {
        const re = new RegExp('^socklab_bytes_total\\{[^}]*direction="' + dir + '"[^}]*\\}\\s+([0-9.eE+]+)', 'm');
        const m = text.match(re);
        return m ? Number(m[1]) : null;
      };
      const up = grab('up');
      const down = grab('down');
      if (up != null && down != null) {
        model.totals.up = up;
        model.totals.down = down;
        dirty.totals = true;
        schedule();
      }
    } catch (e) {
      // Totals then grow from the live events only.
    }
  }

  function select(id) {
    if (log.sid === id) return;
    const prev = log.sid;
    log.sid = id;
    log.gen += 1;
    log.entries = [];
    log.ids = new Set();
    log.pending = [];
    log.buffer = [];
    log.start = 0;
    log.cap = LOG_CAP;
    $('log').replaceChildren();
    if (prev != null) dirty.rows.add(prev);
    if (id != null) dirty.rows.add(id);
    dirty.list = true;
    dirty.detail = true;
    history.replaceState(null, '', location.pathname + location.search + (id != null ? '#session=' + id : ''));
    schedule();
    if (id != null) loadLog(log.gen);
  }

  async function closeSession(id) {
    try {
      await api('POST', 'api/sessions/' + id + '/close');
    } catch (e) {
      showError('Closing session #' + id, e);
    }
  }

  // ------------------------------------------------------------------ message log

  async function fetchMessages(sid, offset, count) {
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
  async function loadLog(gen) {
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

  async function loadOlder() {
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

  function renderPayload(entry) {
    const b = messageBytes(entry.m);
    const shown = b.length > PAYLOAD_SHOW_MAX ? b.subarray(0, PAYLOAD_SHOW_MAX) : b;
    const text = model.view === 'hex' ? bytesToHex(shown) : escapeBytes(shown);
    entry.payloadEl.textContent = text;
    const full = Math.max(entry.m.len || 0, b.length);
    if (full > shown.length) {
      entry.payloadEl.appendChild(el('span', 'more', ' \u2026 +' + fmtInt(full - shown.length) + ' bytes'));
    }
  }

  function makeRow(m) {
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

  function flushLog() {
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

  function rerenderPayloads() {
    for (const entry of log.entries) renderPayload(entry);
  }

  function rememberRecent(m) {
    const sid = m.session_id;
    let list = model.recent.get(sid);
    if (list) model.recent.delete(sid);
    else list = [];
    list.push(m);
    if (list.length > RECENT_PER_SESSION) list.splice(0, list.length - RECENT_PER_SESSION);
    model.recent.set(sid, list); // re-insert: Map order = least recently active first
    if (model.recent.size > RECENT_SESSIONS) model.recent.delete(model.recent.keys().next().value);
  }

  // ------------------------------------------------------------------ throughput chart

  const chart = {
    up: new Float64Array(CHART_SECONDS + 1),
    down: new Float64Array(CHART_SECONDS + 1),
    sec: new Float64Array(CHART_SECONDS + 1).fill(-1),
    lastStats: null,
  };

  function chartAdd(dir, bytes, atMs) {
    const sec = Math.floor(atMs / 1000);
    const i = sec % chart.sec.length;
    if (chart.sec[i] !== sec) {
      chart.sec[i] = sec;
      chart.up[i] = 0;
      chart.down[i] = 0;
    }
    chart[dir][i] += bytes;
  }

  /**
   * Adds bytes moved between two local times to the chart, split over the seconds the
   * interval covers, so stats events that jitter around second boundaries draw no spikes.
   */
  function spread(dir, bytes, fromMs, toMs) {
    if (!bytes) return;
    if (!(toMs > fromMs) || toMs - fromMs > 10000) {
      chartAdd(dir, bytes, toMs - 1);
      return;
    }
    for (let t = fromMs; t < toMs; ) {
      const end = Math.min(toMs, (Math.floor(t / 1000) + 1) * 1000);
      chartAdd(dir, (bytes * (end - t)) / (toMs - fromMs), t);
      t = end;
    }
  }

  function chartSeries(dir, nowSec) {
    const out = new Array(CHART_SECONDS);
    for (let k = 0; k < CHART_SECONDS; k++) {
      const sec = nowSec - CHART_SECONDS + k; // the current, incomplete second is not drawn
      const i = ((sec % chart.sec.length) + chart.sec.length) % chart.sec.length;
      out[k] = chart.sec[i] === sec ? chart[dir][i] : 0;
    }
    return out;
  }

  function niceMax(v) {
    if (v <= 64) return 64;
    const p = Math.pow(2, Math.ceil(Math.log2(v)));
    return p * 0.75 >= v ? p * 0.75 : p;
  }

  function drawChart() {
    const canvas = $('chart');
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const nowSec = Math.floor(Date.now() / 1000);
    const up = chartSeries('up', nowSec);
    const down = chartSeries('down', nowSec);
    const peakUp = Math.max(...up);
    const peakDown = Math.max(...down);
    const max = niceMax(Math.max(peakUp, peakDown));
    canvas.dataset.peakUp = String(Math.round(peakUp)); // bytes/s, for tests and the curious
    canvas.dataset.peakDown = String(Math.round(peakDown));
    const css = getComputedStyle(document.documentElement);
    const top = 12;
    const plotH = h - top - 2;
    ctx.strokeStyle = css.getPropertyValue('--grid').trim() || '#e5e7eb';
    ctx.lineWidth = 1;
    for (let g = 0; g <= 2; g++) {
      const y = Math.round(top + (plotH * g) / 2) + 0.5;
      ctx.beginPath();
      ctx.moveTo(0, y);
      ctx.lineTo(w, y);
      ctx.stroke();
    }
    const line = (series, color, fill) => {
      const step = w / (CHART_SECONDS - 1);
      ctx.beginPath();
      series.forEach((v, k) => {
        const x = k * step;
        const y = top + plotH - (plotH * v) / max;
        if (k === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      if (fill) {
        ctx.lineTo(w, top + plotH);
        ctx.lineTo(0, top + plotH);
        ctx.closePath();
        ctx.fillStyle = fill;
        ctx.fill();
      } else {
        ctx.strokeStyle = color;
        ctx.lineWidth = 1.5;
        ctx.stroke();
      }
    };
    const upColor = css.getPropertyValue('--up').trim() || '#0d9488';
    const downColor = css.getPropertyValue('--down').trim() || '#7c3aed';
    line(up, null, css.getPropertyValue('--up-fill').trim() || 'rgba(13,148,136,0.15)');
    line(up, upColor);
    line(down, downColor);
    ctx.fillStyle = css.getPropertyValue('--muted').trim() || '#6b7280';
    ctx.font = '10px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
    ctx.textBaseline = 'top';
    ctx.fillText(fmtBytes(max) + '/s', 2, 0);
    $('rate-up').textContent = fmtBytes(up[CHART_SECONDS - 1]) + '/s';
    $('rate-down').textContent = fmtBytes(down[CHART_SECONDS - 1]) + '/s';
  }

  // ------------------------------------------------------------------ live events

  function statsActive() {
    return Date.now() - model.statsSeenAt < 5000;
  }

  /** Data events larger than this are decoded by `parseBigData` instead of JSON.parse. */
  const BIG_EVENT_CHARS = 16384;

  /**
   * Decodes a large data event without parsing its whole payload: a 64 KiB read arrives as
   * ~200 KB of JSON (hex plus text), and JSON.parse of every one of them is what made the
   * page fall behind a fast device. Only the message header, the first PAYLOAD_SHOW_MAX
   * bytes of hex and the session object are read. Returns null when the event does not
   * have the expected shape, and the caller falls back to JSON.parse.
   */
  function parseBigData(raw) {
    if (!raw.startsWith('{"type":"data","message":{')) return null;
    const hexAt = raw.indexOf('"hex":"');
    const sessionAt = raw.lastIndexOf(',"session":{');
    if (hexAt < 0 || sessionAt < hexAt) return null;
    const head = JSON.parse(raw.slice(26 - 1, hexAt).replace(/,\s*$/, '') + '}');
    const hexStart = hexAt + 7;
    const hexEnd = raw.indexOf('"', hexStart);
    if (hexEnd < 0 || typeof head.session_id !== 'number') return null;
    head.hex = raw.slice(hexStart, Math.min(hexEnd, hexStart + 2 * PAYLOAD_SHOW_MAX));
    if (typeof head.len !== 'number') head.len = (hexEnd - hexStart) >> 1;
    const session = JSON.parse(raw.slice(sessionAt + 11, raw.lastIndexOf('}')));
    return { type: 'data', message: head, session };
  }

  function onEvent(raw) {
    let ev = null;
    try {
      if (raw.length > BIG_EVENT_CHARS) ev = parseBigData(raw);
    } catch (e) {
      ev = null;
    }
    try {
      if (!ev) ev = JSON.parse(raw);
    } catch (e) {
      return;
    }
    if (!ev || typeof ev !== 'object') return;
    switch (ev.type) {
      case 'online':
        putSession(ev.session, true);
        break;
      case 'offline': {
        const old = putSession(ev.session, true);
        // An online session we never fetched: it was counted in onlineExtra.
        if (!old) {
          model.onlineExtra = Math.max(0, model.onlineExtra - 1);
          model.sessionExtra = Math.max(0, model.sessionExtra - 1);
        }
        break;
      }
      case 'data':
        onData(ev);
        break;
      case 'listener':
        if (ev.listener) {
          model.listeners.set(ev.listener.id, ev.listener);
          dirty.listeners = true;
        }
        break;
      case 'stats':
        onStats(ev);
        break;
      case 'link':
        // State changes (outage, reset, NAT drop, link set) carry the session; the
        // per-piece reports (delayed, throttled, dropped) do not and change nothing here.
        if (!ev.session) return;
        putSession(ev.session, true);
        break;
      case 'lagged':
      case 'resync':
        // The server dropped events for us: reload what is on screen.
        resync();
        break;
      default:
        return;
    }
    schedule();
  }

  function onData(ev) {
    const m = ev.message;
    if (!m) return;
    slim(m);
    const dir = m.direction === 'up' ? 'up' : 'down';
    const len = typeof m.len === 'number' ? m.len : messageBytes(m).length;
    if (ev.session) {
      const old = putSession(ev.session, true);
      if (!old && ev.session.online) {
        // Traffic of an online session we never fetched: it was counted in onlineExtra.
        model.onlineExtra = Math.max(0, model.onlineExtra - 1);
        model.sessionExtra = Math.max(0, model.sessionExtra - 1);
      }
    }
    if (!statsActive()) {
      model.totals[dir] += len;
      chartAdd(dir, len, Date.now());
      dirty.totals = true;
    }
    if (m.session_id === log.sid) {
      if (log.loading) log.buffer.push(m);
      else {
        log.pending.push(m);
        // Never hold more than a rendered log's worth while the tab does not paint.
        if (log.pending.length > 2 * log.cap) {
          const drop = log.pending.length - log.cap;
          log.pending.splice(0, drop);
          log.start += drop;
        }
      }
    }
    rememberRecent(m);
  }

  function onStats(ev) {
    const now = typeof ev.ts_ms === 'number' ? ev.ts_ms : Date.now();
    const prev = chart.lastStats;
    const local = Date.now();
    if (prev && now > prev.ts) {
      spread('up', Math.max(0, ev.bytes_up - prev.up), prev.local, local);
      spread('down', Math.max(0, ev.bytes_down - prev.down), prev.local, local);
    }
    chart.lastStats = { ts: now, local, up: ev.bytes_up, down: ev.bytes_down };
    model.statsSeenAt = Date.now();
    model.totals.up = ev.bytes_up;
    model.totals.down = ev.bytes_down;
    if (typeof ev.online === 'number') {
      // The server's exact count: online sessions not in the model are the difference.
      model.onlineExtra = Math.max(0, ev.online - model.onlineInMap);
    }
    dirty.totals = true;
  }

  let stream = null;
  let retryMs = RETRY_MIN_MS;
  let retryTimer = null;
  let missedEvents = false; // set by a stream error: the next open must catch up

  function setStreamState(st, text) {
    const chip = $('stream-state');
    chip.dataset.state = st;
    chip.textContent = text;
    chip.className = 'chip ' + (st === 'live' ? 'chip-ok' : st === 'error' ? 'chip-bad' : 'chip-wait');
  }

  /** Opens the event stream; after an error it is closed and reopened with a growing delay. */
  function connect() {
    clearTimeout(retryTimer);
    const url = 'api/events' + (TOKEN ? '?token=' + encodeURIComponent(TOKEN) : '');
    const es = new EventSource(url);
    stream = es;
    es.onopen = () => {
      retryMs = RETRY_MIN_MS;
      setStreamState('live', 'live');
      // Events missed while disconnected are recovered from the API.
      if (missedEvents) resync();
      missedEvents = false;
    };
    const handler = (e) => onEvent(e.data);
    es.onmessage = handler;
    for (const name of ['online', 'offline', 'data', 'listener', 'stats', 'lagged', 'resync']) {
      es.addEventListener(name, handler);
    }
    es.onerror = () => {
      if (stream !== es) return;
      es.close();
      stream = null;
      missedEvents = true;
      setStreamState('error', 'reconnecting in ' + Math.round(retryMs / 1000) + ' s');
      retryTimer = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    };
  }

  let resyncQueued = false;
  let resyncAt = 0;
  /** Resyncs run at most this often (a lagging stream may report lag every second). */
  const RESYNC_MIN_MS = 2000;

  function resync() {
    if (resyncQueued) return;
    resyncQueued = true;
    const wait = Math.max(100, resyncAt + RESYNC_MIN_MS - Date.now());
    setTimeout(() => {
      resyncQueued = false;
      resyncAt = Date.now();
      loadSessions(true);
      loadCounts();
      loadListeners();
      loadTotals();
      if (log.sid != null) {
        const sid = log.sid;
        log.sid = null;
        select(sid);
      }
    }, wait);
  }

  // ------------------------------------------------------------------ listeners

  async function loadListeners() {
    try {
      const r = await api('GET', 'api/listeners');
      model.listeners.clear();
      for (const l of r.listeners || []) model.listeners.set(l.id, l);
      dirty.listeners = true;
      schedule();
    } catch (e) {
      showError('Loading listeners', e);
    }
  }

  async function setEcho(id, enabled) {
    try {
      const l = await api('PUT', 'api/listeners/' + id + '/echo', { enabled });
      if (l && l.id != null) model.listeners.set(l.id, l);
    } catch (e) {
      showError('Setting echo', e);
    }
    dirty.listeners = true;
    schedule();
  }

  const listenerEls = new Map(); // listener id -> {li, meta, box}
  let listenerKey = ''; // the listener set the list and the broadcast menu were built for

  /** One listener's row, built once; later renders only update it (clicks never hit a
   * replaced element while sessions come and go). */
  function listenerRow(l) {
    let row = listenerEls.get(l.id);
    if (row) return row;
    const li = el('li', 'listener');
    li.dataset.testid = 'listener-row';
    li.dataset.listenerId = String(l.id);
    const name = el('span', 'listener-name');
    name.appendChild(el('span', 'proto proto-' + l.proto, l.proto));
    name.appendChild(el('span', 'mono', ' ' + l.addr));
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
    li.append(name, meta, label, rulesBtn, linkIn);
    row = { li, meta, box, linkIn };
    listenerEls.set(l.id, row);
    return row;
  }

  function renderListeners() {
    const sorted = [...model.listeners.values()].sort((a, b) => a.id - b.id);
    const key = sorted.map((l) => l.id + ' ' + l.proto + ' ' + l.addr).join('|');
    if (key !== listenerKey) {
      listenerKey = key;
      listenerEls.clear();
      const items = sorted.map((l) => listenerRow(l).li);
      if (!items.length) items.push(el('li', 'empty', 'No listeners reported.'));
      $('listener-list').replaceChildren(...items);
      const select = $('broadcast-listener');
      const chosen = select.value;
      const options = [option('', 'all listeners', chosen)];
      for (const l of sorted) options.push(option(String(l.id), l.proto + ' ' + l.addr, chosen));
      select.replaceChildren(...options);
      $('detail-empty-addrs').textContent = sorted.length
        ? 'Devices connect to ' + sorted.map((l) => l.proto + ' ' + l.addr).join('  \u00b7  ')
        : '';
    }
    const onlineBy = new Map();
    for (const s of model.sessions.values()) {
      if (s.online) onlineBy.set(s.listener_id, (onlineBy.get(s.listener_id) || 0) + 1);
    }
    for (const l of sorted) {
      const { li, meta, box, linkIn } = listenerRow(l);
      li.dataset.echo = l.echo ? 'true' : 'false'; // the server's state, not the checkbox's
      li.dataset.link = l.link || '';
      if (document.activeElement !== linkIn) linkIn.value = l.link || '';
      box.checked = !!l.echo;
      const rules = (l.auto_replies || []).length;
      // Every online session is in the model unless the API had more than a page of them.
      const online = model.onlineExtra === 0 ? onlineBy.get(l.id) || 0 : l.online;
      meta.textContent = (typeof online === 'number' ? online + ' online' : '') +
        (rules ? ' \u00b7 ' + rules + ' auto-repl' + (rules === 1 ? 'y' : 'ies') : '');
    }
  }

  // ------------------------------------------------------------------ auto-reply rules

  const MATCH_KINDS = [
    ['exact', 'text equals'],
    ['hex', 'contains hex'],
    ['regex', 'matches regex'],
  ];

  function option(value, label, selected) {
    const o = el('option', null, label);
    o.value = value;
    o.selected = value === selected;
    return o;
  }

  function ruleRow(rule) {
    const row = el('div', 'rule');
    row.dataset.testid = 'rule-row';
    const match = el('select', 'rule-match');
    match.dataset.testid = 'rule-match';
    match.setAttribute('aria-label', 'Match kind');
    for (const [v, label] of MATCH_KINDS) match.appendChild(option(v, label, rule.match || 'exact'));
    const pattern = el('input', 'rule-pattern mono');
    pattern.dataset.testid = 'rule-pattern';
    pattern.placeholder = 'pattern';
    pattern.value = rule.pattern || '';
    const replyMode = el('select', 'rule-reply-mode');
    replyMode.dataset.testid = 'rule-reply-mode';
    replyMode.setAttribute('aria-label', 'Reply format');
    const isHex = rule.reply_hex != null && rule.reply_text == null;
    replyMode.append(option('text', 'reply text', isHex ? 'hex' : 'text'), option('hex', 'reply hex', isHex ? 'hex' : 'text'));
    const reply = el('input', 'rule-reply mono');
    reply.dataset.testid = 'rule-reply';
    reply.placeholder = 'reply';
    reply.value = (isHex ? rule.reply_hex : rule.reply_text) || '';
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

  /** Opens the rule editor of one listener, filled with its current rules. */
  function openRules(id) {
    const l = model.listeners.get(id);
    const box = $('rules-editor');
    if (!l) return;
    box.dataset.listenerId = String(id);
    const head = el('div', 'rules-head', 'Auto-replies of ' + l.proto + ' ' + l.addr);
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
    cancel.addEventListener('click', closeRules);
    const actions = el('div', 'rules-actions');
    actions.append(add, cancel, save);
    const hint = el('div', 'hint', 'First match answers. Text equals ignores one trailing line end.');
    box.replaceChildren(head, rows, actions, hint);
    box.hidden = false;
  }

  function closeRules() {
    const box = $('rules-editor');
    box.hidden = true;
    box.replaceChildren();
  }

  async function saveRules(id, rows, button) {
    const rules = [];
    for (const row of rows.querySelectorAll('[data-testid="rule-row"]')) {
      const pattern = row.querySelector('.rule-pattern').value;
      const reply = row.querySelector('.rule-reply').value;
      if (!pattern && !reply) continue;
      const hex = row.querySelector('.rule-reply-mode').value === 'hex';
      rules.push({
        match: row.querySelector('.rule-match').value,
        pattern,
        reply_text: hex ? null : reply,
        reply_hex: hex ? reply.replace(/[\s:]/g, '') : null,
      });
    }
    button.disabled = true;
    try {
      const l = await api('PUT', 'api/listeners/' + id + '/auto-replies', { rules });
      if (l && l.id != null) model.listeners.set(l.id, l);
      dirty.listeners = true;
      schedule();
      hideError();
      closeRules();
    } catch (e) {
      showError('Saving auto-reply rules', e);
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ rendering

  function schedule() {
    if (frameQueued) return;
    frameQueued = true;
    // Hidden tabs get no animation frames; a timer keeps the model and DOM bounded there.
    if (document.hidden) setTimeout(flush, 250);
    else requestAnimationFrame(flush);
  }

  const rowEls = new Map(); // session id -> <li>

  function sessionRow(s) {
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
      l1.appendChild(el('span', 'proto proto-' + s.proto, s.proto));
      const peer = el('span', 'peer mono', s.peer);
      peer.dataset.testid = 'session-peer';
      l1.appendChild(peer);
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

  function updateRow(li, s) {
    li.dataset.online = s.online ? 'true' : 'false';
    li.classList.toggle('offline', !s.online);
    li.classList.toggle('selected', s.id === log.sid);
    li.setAttribute('aria-pressed', s.id === log.sid ? 'true' : 'false');
    const st = li.querySelector('.row-state');
    st.textContent = s.online ? 'online' : 'offline' + (s.end_reason ? ' \u00b7 ' + reasonText(s.end_reason) : '');
    li.querySelector('.row-bytes').textContent =
      '\u2191 ' + fmtBytes(s.bytes_up || 0) + '  \u2193 ' + fmtBytes(s.bytes_down || 0);
    li.querySelector('.row-close').hidden = !s.online;
    const lk = li.querySelector('.row-link');
    lk.textContent = linkText(s);
    lk.hidden = !s.link;
    lk.dataset.state = s.link ? s.link.state : '';
  }

  /** A session's emulated link as shown: "nbiot,nat_idle=270s", plus its state unless ok. */
  function linkText(s) {
    if (!s || !s.link) return '';
    return s.link.spec + (s.link.state && s.link.state !== 'ok' ? ' \u00b7 ' + reasonText(s.link.state) : '');
  }

  /** Arrow keys move the selection through the rendered session rows. */
  function moveSelection(e) {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const rows = [...$('session-list').children];
    if (!rows.length) return;
    e.preventDefault();
    const at = rows.findIndex((li) => li.dataset.sessionId === String(log.sid));
    const next = e.key === 'ArrowDown' ? Math.min(rows.length - 1, at + 1) : Math.max(0, at - 1);
    const li = rows[at < 0 ? 0 : next];
    select(Number(li.dataset.sessionId));
    li.focus();
  }

  function renderList() {
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

  function renderDetail() {
    const s = log.sid != null ? model.sessions.get(log.sid) : null;
    $('detail-empty').hidden = log.sid != null;
    $('detail-body').hidden = log.sid == null;
    if (log.sid == null) return;
    $('detail').dataset.sessionId = String(log.sid);
    $('detail-title').textContent = 'Session #' + log.sid;
    if (!s) return;
    const state = $('detail-state');
    state.textContent = s.online ? 'online' : 'offline' + (s.end_reason ? ' \u00b7 ' + reasonText(s.end_reason) : '');
    state.className = 'chip ' + (s.online ? 'chip-ok' : 'chip-off');
    state.dataset.online = s.online ? 'true' : 'false';
    $('detail-peer').textContent = s.proto + '  ' + s.peer + ' \u2192 ' + (s.local || '');
    $('detail-bytes-up').textContent = fmtInt(s.bytes_up);
    $('detail-bytes-down').textContent = fmtInt(s.bytes_down);
    $('detail-msgs').textContent = fmtInt(s.msgs_up) + ' / ' + fmtInt(s.msgs_down);
    $('detail-started').textContent = fmtDateTime(msOf(s, 'started_at'));
    $('detail-ended').textContent = s.online ? '\u2014' : fmtDateTime(msOf(s, 'ended_at'));
    $('detail-close').disabled = !s.online;
    const link = $('detail-link');
    link.textContent = s.link ? linkText(s) : s.online ? 'none' : '\u2014';
    link.dataset.state = s.link ? s.link.state : 'none';
    link.className = 'chip ' + (s.link && s.link.state !== 'ok' ? 'chip-off' : 'chip-link');
    for (const id of ['link-apply', 'fault-outage', 'fault-reset', 'fault-nat']) $(id).disabled = !s.online;
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

  function renderTotals() {
    $('total-online').textContent = fmtInt(model.onlineInMap + model.onlineExtra);
    $('total-sessions').textContent = fmtInt(model.sessions.size + model.sessionExtra);
    const up = $('total-up');
    const down = $('total-down');
    up.textContent = fmtBytes(model.totals.up);
    up.title = fmtInt(model.totals.up) + ' bytes';
    down.textContent = fmtBytes(model.totals.down);
    down.title = fmtInt(model.totals.down) + ' bytes';
    document.title = 'socklab \u00b7 ' + fmtInt(model.onlineInMap + model.onlineExtra) + ' online';
  }

  function flush() {
    frameQueued = false;
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
    if (!log.loading) flushLog();
    if (dirty.detail) {
      dirty.detail = false;
      renderDetail();
    }
    if (dirty.totals) {
      dirty.totals = false;
      renderTotals();
    }
    if (dirty.listeners) {
      dirty.listeners = false;
      renderListeners();
    }
  }

  // ------------------------------------------------------------------ operator actions

  const EOL_HEX = { '': '', '\n': '0a', '\r\n': '0d0a' };

  /** The request body for a send/broadcast box, or an Error with what is wrong. */
  function payloadBody(mode, value, eol) {
    if (mode === 'hex') {
      const hex = value.replace(/0x/gi, '').replace(/[\s:,-]/g, '') + (EOL_HEX[eol] || '');
      if (!hex) throw new Error('nothing to send');
      return { hex };
    }
    const text = value + (eol || '');
    if (!text) throw new Error('nothing to send');
    return { text };
  }

  async function sendToSelected() {
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
    } catch (e) {
      showError('Sending to session #' + sid, e);
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ link emulation

  async function setSessionLink() {
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

  async function injectFault(body) {
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

  async function setListenerLink(id, value) {
    try {
      const l = await api('PUT', 'api/listeners/' + id + '/link', { link: value.trim() || null });
      hideError();
      if (l && l.id != null) model.listeners.set(l.id, l);
    } catch (e) {
      showError('Setting the link of listener ' + id, e);
    }
    dirty.listeners = true;
    schedule();
  }

  async function broadcast() {
    let body;
    try {
      body = payloadBody($('broadcast-mode').value, $('broadcast-input').value, '');
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

  function setFilter(f) {
    if (model.filter === f) return;
    model.filter = f;
    for (const b of document.querySelectorAll('[data-filter]')) b.classList.toggle('on', b.dataset.filter === f);
    model.pageOffset = 0;
    model.pageTotal = 0;
    dirty.list = true;
    schedule();
    loadSessions(true);
  }

  function setView(v) {
    if (model.view === v) return;
    model.view = v;
    try {
      localStorage.setItem('socklab.view', v);
    } catch (e) {
      // Storage may be disabled; the choice then lasts for this page only.
    }
    for (const b of document.querySelectorAll('[data-view]')) b.classList.toggle('on', b.dataset.view === v);
    $('log').dataset.view = v;
    rerenderPayloads();
  }

  function submitOnEnter(textarea, form) {
    textarea.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
  }

  function init() {
    $('error-close').addEventListener('click', hideError);
    for (const b of document.querySelectorAll('[data-filter]')) b.addEventListener('click', () => setFilter(b.dataset.filter));
    for (const b of document.querySelectorAll('[data-view]')) b.addEventListener('click', () => setView(b.dataset.view));
    $('log').dataset.view = model.view;
    let savedView = null;
    try {
      savedView = localStorage.getItem('socklab.view');
    } catch (e) {
      savedView = null;
    }
    if (savedView === 'hex') setView('hex');
    $('session-list').addEventListener('keydown', moveSelection);
    $('sessions-more').addEventListener('click', () => loadSessions(false));
    $('log-older').addEventListener('click', loadOlder);
    $('detail-close').addEventListener('click', () => log.sid != null && closeSession(log.sid));
    $('send-form').addEventListener('submit', (e) => {
      e.preventDefault();
      sendToSelected();
    });
    $('broadcast-form').addEventListener('submit', (e) => {
      e.preventDefault();
      broadcast();
    });
    $('link-form').addEventListener('submit', (e) => {
      e.preventDefault();
      setSessionLink();
    });
    $('fault-outage').addEventListener('click', () =>
      injectFault({ fault: 'outage', seconds: Number($('outage-seconds').value) || 5 }));
    $('fault-reset').addEventListener('click', () => injectFault({ fault: 'reset' }));
    $('fault-nat').addEventListener('click', () => injectFault({ fault: 'nat_drop' }));
    submitOnEnter($('send-input'), $('send-form'));
    submitOnEnter($('broadcast-input'), $('broadcast-form'));
    $('send-input').placeholder = 'Send to this device (Enter sends, Shift+Enter adds a line)';
    const box = $('log');
    box.addEventListener('scroll', () => {
      $('log-follow').checked = box.scrollTop + box.clientHeight >= box.scrollHeight - 24;
    });
    $('log-follow').addEventListener('change', () => {
      if ($('log-follow').checked) box.scrollTop = box.scrollHeight;
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && frameQueued) requestAnimationFrame(flush);
    });

    connect();
    loadSessions(true);
    loadCounts();
    loadListeners();
    loadTotals();
    const m = /session=(\d+)/.exec(location.hash);
    if (m) select(Number(m[1]));
    else renderDetail();
    setInterval(() => {
      if (!document.hidden) drawChart();
    }, 1000);
    window.addEventListener('resize', drawChart);
    drawChart();
    document.documentElement.dataset.ready = 'true';
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
