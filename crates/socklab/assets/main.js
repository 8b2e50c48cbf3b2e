// socklab dashboard entry point: one DOM flush per frame, and the page wiring.

import { hideError, loadTotals } from './api.js';
import { drawChart } from './chart.js';
import { connect } from './events.js';
import { loadListeners, renderListeners } from './listeners.js';
import { flushLog, loadOlder, rerenderPayloads } from './log.js';
import { broadcast, injectFault, sendToSelected, setSessionLink, submitOnEnter } from './send.js';
import { closeSession, loadCounts, loadSessions, moveSelection, renderDetail, renderList, renderTotals, rowEls, select, setFilter, updateRow } from './sessions.js';
import { $, dirty, log, model } from './state.js';

let frameQueued = false;

// ------------------------------------------------------------------ rendering

export function schedule() {
  if (frameQueued) return;
  frameQueued = true;
  // Hidden tabs get no animation frames; a timer keeps the model and DOM bounded there.
  if (document.hidden) setTimeout(flush, 250);
  else requestAnimationFrame(flush);
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
