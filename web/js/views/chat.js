// Chat view for one room: history with scroll-back, live updates, pending sends, typing
// indicator, "Seen by", composer, dropping files to share them, the Files button.
// Re-renders only the messages that changed; attachments are kept across re-renders.

import { h, joinNames } from '../dom.js';
import { icon } from '../icons.js';
import { renderMessage, renderPending } from './message.js';
import { createComposer } from './composer.js';
import { createCallHeaderActions } from './call.js';
import { createAttachment } from './attachment.js';
import { openFilesPanel } from './files-panel.js';
import { openRecordingsPanel } from './recordings-panel.js';

const NEAR_BOTTOM_PX = 48;
const NEAR_TOP_PX = 120;
const KIND_LABEL = { course: 'Course', group: 'Group', direct: 'Direct message' };

export function createChatView(app, roomId) {
  const r = app.store.room(roomId);
  const roomInfo = () => app.rooms.get(roomId) || { id: roomId, name: '', kind: null };
  const elements = new Map(); // seq → <li>
  let editing = null; // {id, draft}
  let confirmingDelete = null;
  let loadingOlder = false;
  let unseenBelow = 0;
  let pinned = true; // scrolled to the bottom: stay there when content above grows (previews load)
  let destroyed = false;
  const attachments = new Map(); // message id → {fileId, view}: one element per attachment

  // ---- skeleton --------------------------------------------------------------------------
  const title = h('h2', { class: 'chat-title' });
  const subtitle = h('p', { class: 'chat-subtitle muted' });
  const callActions = createCallHeaderActions(app, roomId);
  // The actions wrap under the title when the header is narrow; on phones Files and
  // Recordings show only their icons (with an aria-label).
  const header = h('header', { class: 'chat-header' },
    h('div', { class: 'chat-heading' }, title, subtitle),
    h('div', { class: 'chat-header-actions' },
      callActions.el,
      h('button', {
        type: 'button', class: 'btn btn-secondary btn-small', testid: 'open-files', 'aria-label': 'Files',
        title: 'Files shared in this room', onclick: () => openFilesPanel(app, roomId),
      }, icon('folder', { size: 16 }), h('span', { class: 'btn-label' }, 'Files')),
      h('button', {
        type: 'button', class: 'btn btn-secondary btn-small', testid: 'open-recordings', 'aria-label': 'Recordings',
        title: 'Recordings of this room’s calls', onclick: () => openRecordingsPanel(app, roomId),
      }, icon('film', { size: 16 }), h('span', { class: 'btn-label' }, 'Recordings')),
      h('button', {
        type: 'button', class: 'btn btn-secondary btn-small only-medium', testid: 'toggle-people',
        'aria-controls': 'people-panel', onclick: () => app.emit('people-toggle'),
      }, icon('group', { size: 16 }), 'People')));

  const historyStatus = h('div', { class: 'history-status' });
  const list = h('ol', { class: 'message-list', testid: 'message-list', 'aria-label': 'Messages' });
  const seenBy = h('p', { class: 'seen-by', testid: 'seen-by', hidden: true });
  const pendingList = h('ol', { class: 'message-list pending-list', 'aria-label': 'Messages being sent' });
  const scroller = h('div', {
    class: 'messages', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: '0',
    'aria-label': 'Messages. Use the up and down arrow keys to move between messages.',
  },
    historyStatus, list, seenBy, pendingList);
  const jump = h('button', { type: 'button', class: 'jump-latest', hidden: true, onclick: () => scrollToBottom(true) });
  const typingEl = h('div', { class: 'typing-indicator', testid: 'typing-indicator', 'aria-live': 'polite' });
  const composer = createComposer(app, roomId, {
    roomName: roomInfo().name || 'this room',
    onSent: () => {
      renderPendingList();
      scrollToBottom(true);
    },
  });
  const dropText = h('span', {});
  const dropOverlay = h('div', { class: 'drop-overlay', testid: 'drop-overlay', hidden: true, 'aria-hidden': 'true' },
    h('div', { class: 'drop-overlay-card' }, icon('upload', { size: 28 }), dropText));
  const el = h('section', { class: 'chat', 'aria-label': 'Chat' },
    header,
    h('div', { class: 'messages-wrap' }, scroller, jump),
    typingEl,
    composer.el,
    dropOverlay);

  // ---- message rendering -----------------------------------------------------------------
  const ctx = () => ({
    me: app.me,
    online: app.socket.online,
    canModerate: app.isInstructor(roomId),
    lookup: (id) => r.byId(id),
    previous: (m) => r.messages.get(m.seq - 1) || null,
    nameOf: (uid) => r.displayName(uid),
    editing,
    confirmingDelete,
    onReply: (m) => composer.setReplyTo(m),
    onStartEdit: (m) => { editing = { id: m.id, draft: m.content }; confirmingDelete = null; rerender(m.id); },
    onDraft: (text) => { if (editing) editing.draft = text; },
    onCancelEdit: () => { const id = editing?.id; editing = null; rerender(id); composer.focus(); },
    onSaveEdit: (m, text) => saveEdit(m, text),
    onAskDelete: (m) => { confirmingDelete = m.id; rerender(m.id); },
    onCancelDelete: () => { const id = confirmingDelete; confirmingDelete = null; rerender(id); },
    onDelete: (m) => deleteMessage(m),
    onReact: (m, emoji, on) => app.react(m, emoji, on).catch((err) => flash(`Reaction failed: ${err.message}`)),
    onJump: (id) => jumpTo(id),
    attachment: (m) => attachmentFor(m),
    onRetry: (entry) => app.outbox.retry(entry.client_msg_id),
    onDiscard: (entry) => app.outbox.discard(entry.client_msg_id),
  });

  function place(li, seq) {
    const existing = elements.get(seq);
    elements.set(seq, li);
    if (existing) {
      existing.replaceWith(li);
      return;
    }
    // Most inserts are appends; walk back from the end to find the slot.
    let before = null;
    for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.dataset.seq) < seq) break;
      before = node;
    }
    list.insertBefore(li, before);
  }

  function attachmentFor(m) {
    let a = attachments.get(m.id);
    if (a && a.fileId !== m.file_id) {
      a.view.destroy();
      a = null;
    }
    if (!a) {
      a = { fileId: m.file_id, view: createAttachment(app.files, m) };
      attachments.set(m.id, a);
    }
    return a.view.el;
  }

  function dropAttachment(messageId) {
    attachments.get(messageId)?.view.destroy();
    attachments.delete(messageId);
  }

  function renderAll() {
    list.replaceChildren();
    elements.clear();
    const c = ctx();
    for (const m of r.sorted()) place(renderMessage(m, c), m.seq);
  }

  function rerender(messageId) {
    const m = messageId && r.byId(messageId);
    if (m) place(renderMessage(m, ctx()), m.seq);
  }

  function applyMessages(changed) {
    const atBottom = isNearBottom();
    const topBefore = firstSeq();
    const heightBefore = scroller.scrollHeight;
    const scrollBefore = scroller.scrollTop;
    const c = ctx();
    let appended = 0;
    let mineAppended = false;
    const ids = new Set();
    for (const m of changed) {
      if (m.deleted_at) dropAttachment(m.id);
      const isNew = !elements.has(m.seq);
      place(renderMessage(m, c), m.seq);
      ids.add(m.id);
      if (isNew && m.seq > (topBefore ?? 0)) {
        appended += 1;
        if (m.sender?.id === app.me.id) mineAppended = true;
      }
    }
    // The message after a changed one may start or stop continuing its group; replies quoting
    // a changed message show its new text.
    for (const m of changed) {
      const next = r.messages.get(m.seq + 1);
      if (next && !ids.has(next.id)) place(renderMessage(next, c), next.seq);
    }
    for (const m of r.messages.values()) if (m.reply_to && ids.has(m.reply_to) && !ids.has(m.id)) place(renderMessage(m, c), m.seq);

    const prepended = topBefore !== null && firstSeq() < topBefore;
    if (prepended && !atBottom) {
      scroller.scrollTop = scrollBefore + (scroller.scrollHeight - heightBefore);
    } else if (atBottom || mineAppended) {
      scrollToBottom(false);
    } else if (appended) {
      unseenBelow += appended;
      showJump();
    }
    renderSeenBy();
    renderHistoryStatus();
    maybeMarkRead();
  }

  function renderPendingList() {
    const c = ctx();
    const atBottom = isNearBottom();
    pendingList.replaceChildren(...app.outbox.forRoom(roomId).map((e) => renderPending(e, c)));
    if (atBottom) scrollToBottom(false);
  }

  function renderHistoryStatus() {
    if (!r.loaded) historyStatus.textContent = 'Loading messages…';
    else if (loadingOlder) historyStatus.textContent = 'Loading earlier messages…';
    else if (r.hasOlder) {
      historyStatus.replaceChildren(h('button', { type: 'button', class: 'link-btn', testid: 'load-older', onclick: () => loadOlder() }, 'Load earlier messages'));
      return;
    } else historyStatus.textContent = r.messages.size ? `This is the beginning of ${app.roomTitle(roomId) || 'the room'}.` : 'No messages yet. Start the conversation!';
  }

  function renderSeenBy() {
    const latest = r.latest();
    if (!latest) {
      seenBy.hidden = true;
      return;
    }
    const names = [];
    for (const [uid, seq] of r.reads) {
      if (uid === app.me.id || uid === latest.sender?.id || seq < latest.seq) continue;
      names.push(r.displayName(uid) || 'someone');
    }
    names.sort((a, b) => a.localeCompare(b));
    seenBy.textContent = names.length ? `Seen by ${joinNames(names, 4)}` : '';
    seenBy.hidden = !names.length;
  }

  function renderTyping() {
    const names = [...r.typing.keys()].filter((uid) => uid !== app.me.id).map((uid) => r.displayName(uid) || 'Someone');
    if (!names.length) typingEl.textContent = '';
    else if (names.length === 1) typingEl.textContent = `${names[0]} is typing…`;
    else if (names.length <= 3) typingEl.textContent = `${joinNames(names)} are typing…`;
    else typingEl.textContent = 'Several people are typing…';
  }

  function renderHeader() {
    const room = roomInfo();
    const name = app.roomTitle(roomId) || room.name || 'Room';
    title.textContent = name;
    const count = r.members.size || room.members_count || 0;
    const parts = room.kind ? [KIND_LABEL[room.kind] || room.kind] : [];
    if (count) parts.push(`${count} member${count === 1 ? '' : 's'}`);
    if (r.online.size) parts.push(`${r.online.size} online`);
    subtitle.textContent = parts.join(' · ');
    composer.setInstructor(app.isInstructor(roomId));
    composer.setRoomName(name);
    dropText.textContent = `Drop files to share them in ${name}`;
  }

  // ---- scrolling & read receipts ---------------------------------------------------------
  const firstSeq = () => (list.firstElementChild ? Number(list.firstElementChild.dataset.seq) : null);
  const isNearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;

  function scrollToBottom(smooth) {
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    pinned = true;
    unseenBelow = 0;
    jump.hidden = true;
  }

  function showJump() {
    jump.textContent = `${unseenBelow} new message${unseenBelow === 1 ? '' : 's'} ↓`;
    jump.hidden = false;
  }

  let readTimer = null;
  function maybeMarkRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      if (destroyed || document.visibilityState !== 'visible' || !isNearBottom()) return;
      const latest = r.latest();
      if (latest) app.markRead(roomId, latest.seq);
    }, 250);
  }

  // Attachments change height after they are placed and upload rows shrink the list; whoever
  // was at the bottom stays there. Only the user's own scrolling unpins: a scroll event may
  // also come late from the browser clamping scrollTop while the list was re-rendered.
  const resizes = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(() => {
    if (pinned && !destroyed) scroller.scrollTop = scroller.scrollHeight;
  });
  for (const part of [scroller, historyStatus, list, seenBy, pendingList]) resizes?.observe(part);
  let userScrolledAt = 0;
  const userScrolls = () => { userScrolledAt = performance.now(); };
  for (const type of ['wheel', 'touchmove', 'pointerdown', 'keydown']) scroller.addEventListener(type, userScrolls, { passive: true });
  scroller.addEventListener('scroll', () => {
    if (isNearBottom()) pinned = true;
    else if (performance.now() - userScrolledAt < 1000) pinned = false;
    if (isNearBottom()) {
      unseenBelow = 0;
      jump.hidden = true;
      maybeMarkRead();
    }
    if (scroller.scrollTop < NEAR_TOP_PX && r.hasOlder) loadOlder();
  }, { passive: true });
  // Keyboard: arrow keys move between messages; a focused message shows its actions, which
  // Tab then reaches. Only the list itself is a tab stop.
  scroller.addEventListener('keydown', (ev) => {
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
  });

  const onVisible = () => maybeMarkRead();
  document.addEventListener('visibilitychange', onVisible);

  async function loadOlder() {
    if (loadingOlder || !r.hasOlder) return;
    loadingOlder = true;
    renderHistoryStatus();
    try {
      await app.sync.loadOlder(roomId);
    } catch (err) {
      flash(`Could not load earlier messages: ${err.message}`);
    } finally {
      loadingOlder = false;
      if (!destroyed) renderHistoryStatus();
    }
    // Still at the top with more to load (short page, tall screen): keep going.
    if (!destroyed && r.hasOlder && scroller.scrollTop < NEAR_TOP_PX && scroller.scrollHeight <= scroller.clientHeight + NEAR_TOP_PX) loadOlder();
  }

  function jumpTo(messageId) {
    const m = r.byId(messageId);
    const li = m && elements.get(m.seq);
    if (!li) return flash('That message is further back in the history.');
    pinned = false;
    li.scrollIntoView({ block: 'center', behavior: 'smooth' });
    li.classList.remove('highlight');
    void li.offsetWidth; // restart the highlight animation
    li.classList.add('highlight');
  }

  // ---- actions ---------------------------------------------------------------------------
  async function saveEdit(m, text) {
    const content = text.trim();
    if (!content) return flash('A message cannot be empty. Delete it instead.');
    if (content === m.content) {
      editing = null;
      rerender(m.id);
      return;
    }
    try {
      await app.edit(m, content);
      editing = null;
      rerender(m.id);
      composer.focus();
    } catch (err) {
      flash(`Edit failed: ${err.message}`);
    }
  }

  async function deleteMessage(m) {
    confirmingDelete = null;
    try {
      await app.remove(m);
    } catch (err) {
      flash(`Delete failed: ${err.message}`);
      rerender(m.id);
    }
  }

  // ---- dropping files ---------------------------------------------------------------------
  // Files dragged over the chat show the drop overlay; dropped, each is uploaded and posted.
  // A file dropped anywhere else on the page must not replace the app with the file.
  let dragDepth = 0;
  const carriesFiles = (ev) => [...(ev.dataTransfer?.types || [])].includes('Files');
  const canDrop = () => !composer.el.hidden;
  el.addEventListener('dragenter', (ev) => {
    if (!carriesFiles(ev) || !canDrop()) return;
    ev.preventDefault();
    dragDepth += 1;
    dropOverlay.hidden = false;
  });
  el.addEventListener('dragover', (ev) => {
    if (!carriesFiles(ev) || !canDrop()) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'copy';
  });
  el.addEventListener('dragleave', (ev) => {
    if (!carriesFiles(ev)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) dropOverlay.hidden = true;
  });
  el.addEventListener('drop', (ev) => {
    dragDepth = 0;
    dropOverlay.hidden = true;
    if (!carriesFiles(ev) || !canDrop()) return;
    ev.preventDefault();
    if (ev.dataTransfer.files.length) app.attach(roomId, ev.dataTransfer.files);
  });
  const blockStrayDrop = (ev) => {
    if (carriesFiles(ev) && !el.contains(ev.target)) ev.preventDefault();
  };
  document.addEventListener('dragover', blockStrayDrop);
  document.addEventListener('drop', blockStrayDrop);

  const toast = h('div', { class: 'toast', role: 'alert', hidden: true });
  el.append(toast);
  let toastTimer = null;
  function flash(message) {
    toast.textContent = message;
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, 5000);
  }

  // ---- wiring ----------------------------------------------------------------------------
  const offs = [
    app.store.on('messages', (ev) => { if (ev.room === roomId) applyMessages(ev.messages); }),
    app.store.on('meta', (ev) => {
      if (ev.room !== roomId) return;
      if (ev.part === 'typing') renderTyping();
      if (ev.part === 'window') renderHistoryStatus();
      if (ev.part === 'reads' || ev.part === 'members') renderSeenBy();
      if (ev.part === 'members' || ev.part === 'online') renderHeader();
      if (ev.part === 'members') {
        // Names and permissions (delete buttons) may have changed.
        const atBottom = isNearBottom();
        renderAll();
        if (atBottom) scrollToBottom(false);
      }
    }),
    app.on('outbox', renderPendingList),
    app.on('rooms', renderHeader),
    app.on('connection', (state) => {
      renderPendingList();
      if (state === 'online') maybeMarkRead();
    }),
  ];

  renderHeader();
  renderAll();
  renderPendingList();
  renderHistoryStatus();
  renderTyping();
  renderSeenBy();
  queueMicrotask(() => scrollToBottom(false));

  app.sync.open(roomId).then(() => {
    if (destroyed) return;
    if (app.socket.online) app.refreshPresence(roomId).catch((err) => console.warn(`presence.list failed: ${err.code}`));
    renderHistoryStatus();
    scrollToBottom(false);
    maybeMarkRead();
  }, (err) => {
    if (destroyed || err?.code === 'offline' || err?.code === 'disconnected') return; // opens on reconnect
    if (err?.code === 'forbidden' || err?.code === 'not_found') {
      historyStatus.textContent = 'This room does not exist or you are not a member of it.';
      composer.el.hidden = true;
    } else {
      flash(`Cannot open this room: ${err.message}`);
    }
  });

  return {
    el,
    focus: () => composer.focus(),
    destroy() {
      destroyed = true;
      offs.forEach((off) => off());
      callActions.destroy();
      composer.destroy();
      resizes?.disconnect();
      for (const id of [...attachments.keys()]) dropAttachment(id);
      document.removeEventListener('visibilitychange', onVisible);
      document.removeEventListener('dragover', blockStrayDrop);
      document.removeEventListener('drop', blockStrayDrop);
      clearTimeout(readTimer);
      clearTimeout(toastTimer);
    },
  };
}
