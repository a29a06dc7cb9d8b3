// The chat view of one room: puts the header, message list, scrolling, typing indicator, composer and file drop together.
//
// The parts: chat-header.js, chat-messages.js (re-renders only the messages that changed;
// attachments are kept across re-renders), chat-history.js (scroll-back), chat-scroll.js
// (scroll position, read receipts), chat-drop.js (dropping files), composer.js, search-panel.js
// (searching the room; a result jumps to the message, loading the history back to it).

import { h, joinNames } from '../dom.js';
import { createComposer } from './composer.js';
import { createChatHeader } from './chat-header.js';
import { createMessageList } from './chat-messages.js';
import { createHistory } from './chat-history.js';
import { createScroller, createReadMarker } from './chat-scroll.js';
import { createFileDrop } from './chat-drop.js';
import { createSearchPanel } from './search-panel.js';
import { rulesNote } from '../moderation.js';

const TOAST_MS = 5000;

export function createChatView(app, roomId) {
  const r = app.store.room(roomId);
  let destroyed = false;
  const toast = createToast();
  const flash = toast.show;
  // At once, not smoothly: the search list folds away as the chat scrolls (a smooth scroll that
  // starts at the bottom would be pulled back there by the resize).
  const search = createSearchPanel(app, roomId, { onJump: (m) => jumpTo(m.id, m.seq, { smooth: false }) });
  const header = createChatHeader(app, roomId, { flash, onSearch: () => search.toggle() });
  const composer = createComposer(app, roomId, {
    roomName: app.rooms.get(roomId)?.name || 'this room',
    onSent: () => {
      app.moderation.sent(roomId); // slow mode's clock
      renderRules();
      renderPending();
      scroll.toBottom(true);
    },
  });
  const messages = createMessageList(app, roomId, { composer, flash, onJump: (id) => jumpTo(id) });
  const history = createHistory(app, roomId, { flash, wantsMore: () => scroll.shortPage(), isDestroyed: () => destroyed });
  const scroll = createScroller({
    parts: [history.el, messages.list, messages.seenBy, messages.pendingList],
    list: messages.list,
    onBottom: () => reads.soon(),
    onNearTop: () => { if (r.hasOlder) history.loadOlder(); },
  });
  const reads = createReadMarker(app, roomId, scroll.isNearBottom);
  const typingEl = h('div', { class: 'typing-indicator', testid: 'typing-indicator', 'aria-live': 'polite' });
  const rulesEl = h('p', { class: 'chat-rules-note', testid: 'chat-rules-note', 'aria-live': 'polite', hidden: true });
  let rulesTick = null;
  let lockedControls = null; // the composer's controls we disabled while the chat is locked
  const drop = createFileDrop(app, roomId, () => !composer.el.hidden);
  const el = h('section', { class: 'chat', 'aria-label': 'Chat' },
    header.el,
    search.el,
    h('div', { class: 'messages-wrap' }, scroll.el, scroll.jump),
    typingEl,
    rulesEl,
    toast.el, // in the flow above the composer: it covers neither the messages nor what is typed
    composer.el,
    drop.el);
  drop.listen(el);

  function applyMessages(changed) {
    const before = scroll.snapshot();
    scroll.settle(before, messages.apply(changed));
    messages.renderSeenBy();
    history.render();
    reads.soon();
  }

  function renderPending() {
    const atBottom = scroll.isNearBottom();
    messages.renderPending();
    if (atBottom) scroll.toBottom(false);
  }

  function renderHeader() {
    const name = header.render();
    composer.setInstructor(app.isInstructor(roomId));
    composer.setRoomName(name);
    drop.setRoomName(name);
  }

  /** The chat's rules (moderation.js): a note above the composer; while locked a student's composer is disabled. */
  function renderRules() {
    const mod = app.moderation;
    const rules = mod.rules(roomId);
    const exempt = mod.exempt(roomId);
    const waitS = mod.waitS(roomId);
    const text = rulesNote(rules, { exempt, waitS });
    rulesEl.textContent = text;
    rulesEl.hidden = !text;
    rulesEl.classList.toggle('locked', rules.locked);
    const writable = mod.mayWrite(roomId);
    if (!writable && !lockedControls) {
      lockedControls = [...composer.el.elements].filter((c) => !c.disabled);
      for (const c of lockedControls) c.disabled = true;
    } else if (writable && lockedControls) {
      for (const c of lockedControls) c.disabled = false;
      lockedControls = null;
    }
    clearTimeout(rulesTick);
    if (waitS) rulesTick = setTimeout(renderRules, 1000); // the slow-mode countdown
  }

  function renderTyping() {
    typingEl.textContent = typingText([...r.typing.keys()].filter((uid) => uid !== app.me.id).map((uid) => r.displayName(uid) || 'Someone'));
  }

  /**
   * Scroll to a message and highlight it. With its `seq` (a search result), history is loaded
   * back to it first when it is older than the loaded window.
   */
  async function jumpTo(messageId, seq = null, { smooth = true } = {}) {
    let li = messages.elementOf(messageId);
    const far = !li;
    if (!li && seq !== null && r.loaded && r.oldestSeq !== null && seq < r.oldestSeq) {
      history.setLoading(true);
      try {
        await app.sync.loadBackTo(roomId, seq);
      } catch (err) {
        if (!destroyed) flash(`Could not load earlier messages: ${err.message}`);
      } finally {
        if (!destroyed) history.setLoading(false);
      }
      if (destroyed) return;
      li = messages.elementOf(messageId);
    }
    if (!li && !r.loaded) return flash('The room’s messages are still loading.');
    if (!li) return flash(seq === null ? 'That message is further back in the history.' : 'That message is no longer in the room.');
    scroll.reveal(li, { smooth: smooth && !far }); // after a load, at once: later scroll-back pages keep the view still
  }

  const offs = [
    app.store.on('messages', (ev) => { if (ev.room === roomId) applyMessages(ev.messages); }),
    app.store.on('meta', (ev) => {
      if (ev.room !== roomId) return;
      if (ev.part === 'typing') renderTyping();
      if (ev.part === 'window') history.render();
      if (ev.part === 'reads' || ev.part === 'members') messages.renderSeenBy();
      if (ev.part === 'members' || ev.part === 'online') renderHeader();
      if (ev.part === 'members') {
        // Names and permissions (delete buttons) may have changed.
        const atBottom = scroll.isNearBottom();
        messages.renderAll();
        if (atBottom) scroll.toBottom(false);
      }
    }),
    app.on('outbox', renderPending),
    app.on('rooms', () => { renderHeader(); renderRules(); }),
    app.on('moderation', (id) => { if (id === roomId) renderRules(); }),
    app.on('connection', (state) => {
      renderPending();
      if (state === 'online') reads.soon();
    }),
  ];

  renderHeader();
  renderRules();
  messages.renderAll();
  renderPending();
  history.render();
  renderTyping();
  messages.renderSeenBy();
  queueMicrotask(() => scroll.toBottom(false));
  open();

  function open() {
    app.sync.open(roomId).then(() => {
      if (destroyed) return;
      if (app.socket.online) app.refreshPresence(roomId).catch((err) => console.warn(`presence.list failed: ${err.code}`));
      history.render();
      scroll.toBottom(false);
      reads.soon();
    }, (err) => {
      if (destroyed || err?.code === 'offline' || err?.code === 'disconnected') return; // opens on reconnect
      if (err?.code === 'forbidden' || err?.code === 'not_found') {
        history.unavailable('This room does not exist or you are not a member of it.');
        composer.el.hidden = true;
      } else {
        flash(`Cannot open this room: ${err.message}`);
      }
    });
  }

  return {
    el,
    focus: () => composer.focus(),
    destroy() {
      destroyed = true;
      clearTimeout(rulesTick);
      offs.forEach((off) => off());
      header.destroy();
      search.destroy();
      composer.destroy();
      scroll.destroy();
      messages.destroy();
      reads.destroy();
      drop.destroy();
      toast.destroy();
    },
  };
}

/** "Ana is typing…", "Ana and Ben are typing…", … for the names of who types (not us). */
function typingText(names) {
  if (!names.length) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length <= 3) return `${joinNames(names)} are typing…`;
  return 'Several people are typing…';
}

/** A message between the messages and the composer for a few seconds: {el, show(text), destroy()}. */
function createToast() {
  const el = h('div', { class: 'toast', role: 'alert', hidden: true });
  let timer = null;
  return {
    el,
    show(message) {
      el.textContent = message;
      el.hidden = false;
      clearTimeout(timer);
      timer = setTimeout(() => { el.hidden = true; }, TOAST_MS);
    },
    destroy: () => clearTimeout(timer),
  };
}
