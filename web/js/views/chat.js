// The chat view of one room: puts the header, message list, scrolling, typing indicator, composer and file drop together.
//
// The parts: chat-header.js, chat-messages.js (re-renders only the messages that changed;
// attachments are kept across re-renders), chat-history.js (scroll-back), chat-scroll.js
// (scroll position, read receipts), chat-drop.js (dropping files), composer.js.

import { h, joinNames } from '../dom.js';
import { createComposer } from './composer.js';
import { createChatHeader } from './chat-header.js';
import { createMessageList } from './chat-messages.js';
import { createHistory } from './chat-history.js';
import { createScroller, createReadMarker } from './chat-scroll.js';
import { createFileDrop } from './chat-drop.js';

const TOAST_MS = 5000;

export function createChatView(app, roomId) {
  const r = app.store.room(roomId);
  let destroyed = false;
  const toast = createToast();
  const flash = toast.show;
  const header = createChatHeader(app, roomId);
  const composer = createComposer(app, roomId, {
    roomName: app.rooms.get(roomId)?.name || 'this room',
    onSent: () => {
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
  const drop = createFileDrop(app, roomId, () => !composer.el.hidden);
  const el = h('section', { class: 'chat', 'aria-label': 'Chat' },
    header.el,
    h('div', { class: 'messages-wrap' }, scroll.el, scroll.jump),
    typingEl,
    composer.el,
    drop.el);
  drop.listen(el);
  el.append(toast.el);

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

  function renderTyping() {
    typingEl.textContent = typingText([...r.typing.keys()].filter((uid) => uid !== app.me.id).map((uid) => r.displayName(uid) || 'Someone'));
  }

  function jumpTo(messageId) {
    const li = messages.elementOf(messageId);
    if (!li) return flash('That message is further back in the history.');
    scroll.reveal(li);
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
    app.on('rooms', renderHeader),
    app.on('connection', (state) => {
      renderPending();
      if (state === 'online') reads.soon();
    }),
  ];

  renderHeader();
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
      offs.forEach((off) => off());
      header.destroy();
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

/** A message at the bottom of the chat for a few seconds: {el, show(text), destroy()}. */
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
