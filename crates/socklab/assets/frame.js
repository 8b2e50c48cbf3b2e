// socklab dashboard: the frame scheduler and the renderer registry.
//
// Handlers only change the state and mark what is dirty, then call `schedule()`; one flush
// per animation frame runs every registered renderer in registration order, so thousands of
// messages per second cost one layout per frame. Views register their renderer at import.

const renderers = [];
const frame = { queued: false };

/** Registers `fn` to run once per flushed frame (it checks its own dirty flags). */
export function onFrame(fn) {
  renderers.push(fn);
}

function flush() {
  frame.queued = false;
  for (const fn of renderers) fn();
}

/** Asks for one flush; calls before it happens are free. */
export function schedule() {
  if (frame.queued) return;
  frame.queued = true;
  // Hidden tabs get no animation frames; a timer keeps the state and DOM bounded there.
  if (document.hidden) setTimeout(flush, 250);
  else requestAnimationFrame(flush);
}

/** A tab coming back into view flushes at once what a hidden-tab timer may still hold. */
export function flushIfQueued() {
  if (frame.queued) requestAnimationFrame(flush);
}

/**
 * Sizes `canvas` to its box at the screen's pixel ratio and clears it. Returns its 2-D
 * context drawing in CSS pixels with the box's width `w` and height `h`, or null while the
 * canvas has no size (hidden).
 */
export function clearedCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (!w || !h) return null;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}
