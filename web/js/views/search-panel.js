// The chat's search bar: words in, the room's matching messages out (newest first, GET
// /api/rooms/{id}/messages/search); choosing one jumps to it in the chat (chat.js jumpTo).

import * as api from '../api.js';
import { h, formatTime, formatFullTime } from '../dom.js';
import { icon } from '../icons.js';

const DEBOUNCE_MS = 300;
const LIMIT = 30;
const SNIPPET_CHARS = 160;

/**
 * {el, open(), close(), toggle(), isOpen(), destroy()}. Typing searches after a short pause
 * (Enter at once); `onJump(message)` when a result is chosen. Choosing one folds the list away
 * so the chat shows the message in context; Older / Newer step through the results from there,
 * "Show results" brings the list back. Escape closes the bar.
 */
export function createSearchPanel(app, roomId, { onJump }) {
  const input = h('input', {
    type: 'search', class: 'search-input', testid: 'search-input', maxlength: '500', autocomplete: 'off',
    placeholder: 'Search messages in this room', 'aria-label': 'Search messages in this room',
    oninput: () => soon(), onkeydown: (ev) => { if (ev.key === 'Escape') close(); },
  });
  const form = h('form', { class: 'search-form', onsubmit: (ev) => { ev.preventDefault(); run(); } },
    icon('search', { size: 16 }), input,
    h('button', { type: 'button', class: 'icon-btn', testid: 'close-search', 'aria-label': 'Close search', onclick: () => close() },
      icon('close', { size: 16 })));
  const status = h('span', { class: 'search-status muted', testid: 'search-status', role: 'status', 'aria-live': 'polite' });
  const older = h('button', { type: 'button', class: 'link-btn', testid: 'search-older', onclick: () => choose(current + 1) }, '↑ Older');
  const newer = h('button', { type: 'button', class: 'link-btn', testid: 'search-newer', onclick: () => choose(current - 1) }, 'Newer ↓');
  const showAll = h('button', { type: 'button', class: 'link-btn', testid: 'search-show-results', onclick: () => fold(!results.hidden) });
  const nav = h('span', { class: 'search-nav', hidden: true }, older, newer, showAll);
  const results = h('ol', { class: 'search-results', testid: 'search-results', 'aria-label': 'Search results' });
  const el = h('section', { class: 'search-panel', testid: 'search-panel', role: 'search', hidden: true },
    form, h('div', { class: 'search-bar' }, status, nav), results);
  let timer = null;
  let inflight = null; // the AbortController of the search in flight
  let asked = '';
  let found = []; // the results, newest first
  let current = -1; // the index of the result the chat shows

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(run, DEBOUNCE_MS);
  }

  async function run() {
    clearTimeout(timer);
    const query = input.value.trim();
    if (query === asked && found.length) return fold(false);
    inflight?.abort();
    asked = query;
    show([], '');
    if (!query) return;
    const controller = new AbortController();
    inflight = controller;
    status.textContent = 'Searching…';
    try {
      const { messages = [] } = await api.searchMessages(roomId, query, LIMIT, { signal: controller.signal });
      if (inflight !== controller) return;
      show(messages, query);
    } catch (err) {
      if (err.name === 'AbortError') return;
      asked = '';
      status.textContent = `Search failed: ${err.message}`;
    } finally {
      if (inflight === controller) inflight = null;
    }
  }

  function show(messages, query) {
    found = messages;
    current = -1;
    results.replaceChildren(...messages.map((m, i) => result(m, i, query)));
    fold(false);
    nav.hidden = true;
    status.textContent = !query ? ''
      : messages.length ? `${count()} found`
        : `No messages match “${query}”.`;
  }

  const count = () => `${found.length}${found.length === LIMIT ? '+' : ''} message${found.length === 1 ? '' : 's'}`;

  /** Show the result at index `i` in the chat and fold the list away. */
  function choose(i) {
    if (i < 0 || i >= found.length) return;
    current = i;
    results.querySelectorAll('.search-result').forEach((b, j) => {
      if (j === i) b.setAttribute('aria-current', 'true'); // the result the chat shows
      else b.removeAttribute('aria-current');
    });
    status.textContent = `${i + 1} of ${count()}`;
    older.disabled = i + 1 >= found.length;
    newer.disabled = i === 0;
    nav.hidden = false;
    fold(true);
    onJump(found[i]);
  }

  function fold(folded) {
    results.hidden = folded || !found.length;
    showAll.textContent = folded ? 'Show results' : 'Hide results';
  }

  function result(m, i, query) {
    const who = m.sender?.display_name || (m.kind === 'system' ? 'Podium' : 'Someone');
    return h('li', {},
      h('button', {
        type: 'button', class: 'search-result', testid: 'search-result', dataset: { seq: String(m.seq), id: m.id },
        onclick: () => choose(i),
      },
      h('span', { class: 'search-result-head' },
        h('strong', {}, who),
        h('time', { class: 'muted', datetime: m.created_at, title: formatFullTime(m.created_at) }, formatTime(m.created_at))),
      h('span', { class: 'search-result-text' }, ...marked(snippet(m.content || '', query), query))));
  }

  function open() {
    el.hidden = false;
    input.focus();
    input.select();
  }

  function close() {
    clearTimeout(timer);
    inflight?.abort();
    inflight = null;
    el.hidden = true;
  }

  return {
    el,
    open,
    close,
    toggle: () => (el.hidden ? open() : close()),
    isOpen: () => !el.hidden,
    destroy: close,
  };
}

/** The words the server searches for (letters and digits; each matches as a prefix). */
function words(query) {
  return query.split(/[^\p{L}\p{N}]+/u).filter(Boolean).slice(0, 16);
}

const escapeRe = (w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The part of `text` around its first match, at most SNIPPET_CHARS long, with … where cut. */
function snippet(text, query) {
  if (text.length <= SNIPPET_CHARS) return text;
  const ws = words(query);
  const at = ws.length ? text.search(new RegExp(ws.map(escapeRe).join('|'), 'iu')) : -1;
  const start = Math.max(0, Math.min(at - 40, text.length - SNIPPET_CHARS));
  const cut = text.slice(start, start + SNIPPET_CHARS);
  return `${start > 0 ? '…' : ''}${cut}${start + SNIPPET_CHARS < text.length ? '…' : ''}`;
}

/** `text` as nodes, each word that starts with a word of `query` (the server matches prefixes) in <mark>. */
function marked(text, query) {
  const ws = words(query);
  if (!ws.length) return [text];
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${ws.map(escapeRe).join('|')})[\\p{L}\\p{N}]*`, 'giu');
  const out = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h('mark', {}, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
