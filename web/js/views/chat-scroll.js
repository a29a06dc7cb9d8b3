// The chat's scrolling: stays at the bottom while content grows, "N new messages ↓", scroll-back near the top, arrow keys, read receipts.

import { h } from '../dom.js';

const NEAR_BOTTOM_PX = 48;
const NEAR_TOP_PX = 120;
const READ_DELAY_MS = 250;

/**
 * The scrolling box around `parts` (history status, message list, seen-by, pending sends):
 * {el, jump, isNearBottom(), toBottom(smooth), snapshot(), settle(before, change), reveal(li),
 * shortPage(), destroy()}. `onBottom()` when the user reaches the bottom, `onNearTop()` near the top.
 */
export function createScroller({ parts, list, onBottom, onNearTop }) {
  const el = h('div', {
    class: 'messages', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: '0',
    'aria-label': 'Messages. Use the up and down arrow keys to move between messages.',
  }, ...parts);
  const jump = h('button', { type: 'button', class: 'jump-latest', hidden: true, onclick: () => toBottom(true) });
  let pinned = true; // scrolled to the bottom: stay there when content above grows (previews load)
  let unseenBelow = 0;
  let destroyed = false;
  const isNearBottom = () => el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;

  function toBottom(smooth) {
    el.scrollTo({ top: el.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    pinned = true;
    unseenBelow = 0;
    jump.hidden = true;
  }

  // Attachments change height after they are placed and upload rows shrink the list; whoever
  // was at the bottom stays there. Only the user's own scrolling unpins: a scroll event may
  // also come late from the browser clamping scrollTop while the list was re-rendered.
  const resizes = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(() => {
    if (pinned && !destroyed) el.scrollTop = el.scrollHeight;
  });
  for (const part of [el, ...parts]) resizes?.observe(part);
  let userScrolledAt = 0;
  const userScrolls = () => { userScrolledAt = performance.now(); };
  for (const type of ['wheel', 'touchmove', 'pointerdown', 'keydown']) el.addEventListener(type, userScrolls, { passive: true });
  el.addEventListener('scroll', () => {
    if (isNearBottom()) pinned = true;
    else if (performance.now() - userScrolledAt < 1000) pinned = false;
    if (isNearBottom()) {
      unseenBelow = 0;
      jump.hidden = true;
      onBottom();
    }
    if (el.scrollTop < NEAR_TOP_PX) onNearTop();
  }, { passive: true });
  el.addEventListener('keydown', (ev) => moveFocus(ev, list));

  return {
    el,
    jump,
    isNearBottom,
    toBottom,
    /** Where we are before the list changes (see settle). */
    snapshot: () => ({ atBottom: isNearBottom(), height: el.scrollHeight, top: el.scrollTop }),
    /** After a change: keep the view still when older messages came in above, follow new ones at the bottom, else count them. */
    settle(before, { prepended, appended, mine }) {
      if (prepended && !before.atBottom) {
        el.scrollTop = before.top + (el.scrollHeight - before.height);
      } else if (before.atBottom || mine) {
        toBottom(false);
      } else if (appended) {
        unseenBelow += appended;
        jump.textContent = `${unseenBelow} new message${unseenBelow === 1 ? '' : 's'} ↓`;
        jump.hidden = false;
      }
    },
    /** Scroll to a message (a reply's quote or a search result was clicked) and highlight it. */
    reveal(li, { smooth = true } = {}) {
      pinned = false;
      li.scrollIntoView({ block: 'center', behavior: smooth ? 'smooth' : 'auto' });
      li.classList.remove('highlight');
      void li.offsetWidth; // restart the highlight animation
      li.classList.add('highlight');
    },
    /** Still at the top with room to spare (short page, tall screen): load more. */
    shortPage: () => el.scrollTop < NEAR_TOP_PX && el.scrollHeight <= el.clientHeight + NEAR_TOP_PX,
    destroy() {
      destroyed = true;
      resizes?.disconnect();
    },
  };
}

// Keyboard: arrow keys move between messages; a focused message shows its actions, which
// Tab then reaches. Only the list itself is a tab stop.
function moveFocus(ev, list) {
  if (!['ArrowUp', 'ArrowDown', 'Home', 'End'].includes(ev.key) || ev.target.closest('textarea, input')) return;
  const rows = [...list.querySelectorAll(':scope > li > .msg-row')];
  if (!rows.length) return;
  const current = ev.target.closest('.msg-row');
  let i = current ? rows.indexOf(current) : rows.length;
  if (ev.key === 'ArrowUp') i = Math.max(0, i - 1);
  else if (ev.key === 'ArrowDown') i = Math.min(rows.length - 1, i + 1);
  else if (ev.key === 'Home') i = 0;
  else i = rows.length - 1;
  ev.preventDefault();
  rows[i].focus();
  rows[i].scrollIntoView({ block: 'nearest' });
}

/** Reports `read` for the newest message shortly after the user sees it: {soon(), destroy()}. */
export function createReadMarker(app, roomId, isNearBottom) {
  const r = app.store.room(roomId);
  let timer = null;
  let destroyed = false;

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (destroyed || document.visibilityState !== 'visible' || !isNearBottom()) return;
      const latest = r.latest();
      if (latest) app.reads.markRead(roomId, latest.seq);
    }, READ_DELAY_MS);
  }

  document.addEventListener('visibilitychange', soon);
  return {
    soon,
    destroy() {
      destroyed = true;
      document.removeEventListener('visibilitychange', soon);
      clearTimeout(timer);
    },
  };
}
