// socklab dashboard view: the throughput chart (canvas) and the header's rates.

import { clearedCanvas } from './frame.js';
import { chartSeries, smoothedRate } from './model.js';
import { $, CHART_SECONDS, fmtBytes } from './state.js';


export function niceMax(v) {
  if (v <= 64) return 64;
  const p = Math.pow(2, Math.ceil(Math.log2(v)));
  return p * 0.75 >= v ? p * 0.75 : p;
}

export function drawChart() {
  const canvas = $('chart');
  const area = clearedCanvas(canvas);
  if (!area) return;
  const { ctx, w, h } = area;
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
  // Averaged over a few seconds: a device that sends once a second must not flicker to 0.
  $('rate-up').textContent = fmtBytes(smoothedRate('up', nowSec)) + '/s';
  $('rate-down').textContent = fmtBytes(smoothedRate('down', nowSec)) + '/s';
}
