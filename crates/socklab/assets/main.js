// socklab dashboard entry point: registers the frame renderers in order and wires the page.
// It sits on top of every other module; nothing imports it.

import { hideError } from './api.js';
import { drawChart } from './chart.js';
import { initClientMode } from './clientmode.js';
import { deleteHistory, pollSelectedRates, renderDeviceExtras, saveLabel } from './devices.js';
import { connect } from './events.js';
import { flushIfQueued, onFrame, schedule } from './frame.js';
import { renderListenersIfDirty } from './listeners.js';
import { loadOlder, renderLog, rerenderPayloads, rerenderTimes } from './log.js';
import { loadCounts, loadListeners, loadRecentRates, loadSessions, loadTotals, select, sessionIdOf } from './model.js';
import { broadcast, injectFault, previewPayload, sendToSelected, setSessionLink, submitOnEnter } from './send.js';
import { deleteBefore, runSearch, updateSearchExport } from './search.js';
import { renderSessionChart } from './sessionchart.js';
import { initSnippets } from './snippets.js';
import { closeSession, moveSelection, renderDetail, renderDetailAndTotals, renderSessions, setFilter } from './sessions.js';
import { $, dirty, log, model } from './state.js';

// The order in which one frame writes the DOM: the list, the log, then what summarises them.
onFrame(renderSessions);
onFrame(renderLog);
onFrame(renderDeviceExtras);
onFrame(renderDetailAndTotals);
onFrame(renderSessionChart);
onFrame(renderListenersIfDirty);

/** Reads a saved preference, if storage allows. */
function saved(key) {
  try {
    return localStorage.getItem(key);
  } catch (e) {
    return null;
  }
}

/** Saves a preference; storage may be disabled, and the choice then lasts for this page. */
function save(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch (e) {
    // Kept for this page only.
  }
}

function setView(v) {
  if (model.view === v) return;
  model.view = v;
  save('socklab.view', v);
  for (const b of document.querySelectorAll('[data-view]')) b.classList.toggle('on', b.dataset.view === v);
  $('log').dataset.view = v;
  rerenderPayloads();
}

function setZone(z) {
  model.zone = z === 'local' ? 'local' : 'utc';
  save('socklab.zone', model.zone);
  $('time-zone').dataset.zone = model.zone;
  rerenderTimes();
  dirty.detail = true;
  renderDetail();
}

function init() {
  $('error-close').addEventListener('click', hideError);
  for (const b of document.querySelectorAll('[data-filter]')) b.addEventListener('click', () => setFilter(b.dataset.filter));
  for (const b of document.querySelectorAll('[data-view]')) b.addEventListener('click', () => setView(b.dataset.view));
  $('log').dataset.view = model.view;
  if (saved('socklab.view') === 'hex') setView('hex');
  setZone(saved('socklab.zone') || 'utc');
  $('time-zone').addEventListener('click', () => setZone(model.zone === 'utc' ? 'local' : 'utc'));
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
  initClientMode();
  $('label-form').addEventListener('submit', (e) => {
    e.preventDefault();
    saveLabel();
  });
  $('detail-delete').addEventListener('click', deleteHistory);
  $('detail-export-format').addEventListener('change', () => {
    dirty.detail = true;
    renderDeviceExtras();
  });
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    runSearch(model.sessions);
  });
  $('search-more').addEventListener('click', () => runSearch(model.sessions, true));
  $('search-export-format').addEventListener('change', updateSearchExport);
  $('delete-before-go').addEventListener('click', deleteBefore);
  pollSelectedRates();
  submitOnEnter($('send-input'), $('send-form'));
  submitOnEnter($('broadcast-input'), $('broadcast-form'));
  previewPayload($('send-mode'), $('send-input'), $('send-eol'), $('send-preview'));
  previewPayload($('broadcast-mode'), $('broadcast-input'), $('broadcast-eol'), $('broadcast-preview'));
  const box = $('log');
  box.addEventListener('scroll', () => {
    $('log-follow').checked = box.scrollTop + box.clientHeight >= box.scrollHeight - 24;
  });
  $('log-follow').addEventListener('change', () => {
    if ($('log-follow').checked) box.scrollTop = box.scrollHeight;
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) flushIfQueued();
  });

  initSnippets();
  connect();
  loadSessions(true);
  loadCounts();
  loadListeners();
  loadTotals();
  loadRecentRates().then(drawChart);
  const m = /session=((?:[\w-]+:)?\d+)/.exec(location.hash);
  if (m) select(sessionIdOf(m[1]));
  else renderDetail();
  setInterval(() => {
    if (document.hidden) return;
    drawChart();
    schedule(); // the selected session's chart moves on by a second
  }, 1000);
  window.addEventListener('resize', drawChart);
  drawChart();
  document.documentElement.dataset.ready = 'true';
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
