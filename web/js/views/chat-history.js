// The top of the chat's message list: "Loading…", "Load earlier messages" or the start of the room; loads older pages.

import { h } from '../dom.js';

/**
 * {el, render(), loadOlder(), setLoading(on), unavailable(text)}. `wantsMore()`: the list is still at the top
 * with room to spare after a page (keep loading); `flash(text)` shows an error.
 */
export function createHistory(app, roomId, { flash, wantsMore, isDestroyed }) {
  const r = app.store.room(roomId);
  const el = h('div', { class: 'history-status' });
  let loading = false;

  function render() {
    if (!r.loaded) el.textContent = 'Loading messages…';
    else if (loading) el.textContent = 'Loading earlier messages…';
    else if (r.hasOlder) {
      el.replaceChildren(h('button', { type: 'button', class: 'link-btn', testid: 'load-older', onclick: () => loadOlder() }, 'Load earlier messages'));
    } else el.textContent = r.messages.size ? `This is the beginning of ${app.roomTitle(roomId) || 'the room'}.` : 'No messages yet. Start the conversation!';
  }

  async function loadOlder() {
    if (loading || !r.hasOlder) return;
    loading = true;
    render();
    try {
      await app.sync.loadOlder(roomId);
    } catch (err) {
      flash(`Could not load earlier messages: ${err.message}`);
    } finally {
      loading = false;
      if (!isDestroyed()) render();
    }
    // Still at the top with more to load (short page, tall screen): keep going.
    if (!isDestroyed() && r.hasOlder && wantsMore()) loadOlder();
  }

  return {
    el,
    render,
    loadOlder,
    /** Someone else loads older pages (a jump to a search result): show it. */
    setLoading(on) {
      loading = on;
      render();
    },
    /** The room cannot be opened (not a member, gone): say so instead of the history. */
    unavailable(text) {
      el.textContent = text;
    },
  };
}
