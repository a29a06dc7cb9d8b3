// The chat's messages: placed by seq and re-rendered only when changed, attachments kept across re-renders, pending sends, edit/delete, "Seen by".

import { h, joinNames } from '../dom.js';
import { renderMessage, renderPending } from './message.js';
import { createAttachment } from './attachment.js';
import { createPollCard } from './poll-card.js';
import { confirmWithChoice } from './confirm.js';
import * as api from '../api.js';

/**
 * The message list of a room: {list, seenBy, pendingList, renderAll(), apply(changed),
 * renderPending(), renderSeenBy(), elementOf(messageId), destroy()}. `composer` gets replies
 * and focus back; `flash(text)` shows an error; `onJump(messageId)` for a reply's quote.
 */
export function createMessageList(app, roomId, { composer, flash, onJump }) {
  const r = app.store.room(roomId);
  const elements = new Map(); // seq → <li>
  const attachments = createAttachmentCache(app.files);
  const polls = createPollCache(app, flash);
  const seen = createSeenBy(app, r);
  let editing = null; // {id, draft}
  let confirmingDelete = null;
  const list = h('ol', { class: 'message-list', testid: 'message-list', 'aria-label': 'Messages' });
  const pendingList = h('ol', { class: 'message-list pending-list', 'aria-label': 'Messages being sent' });

  const ctx = () => ({
    me: app.me,
    online: app.socket.online,
    canModerate: app.isInstructor(roomId),
    lookup: (id) => r.byId(id),
    previous: (m) => r.messages.get(m.seq - 1) || null,
    nameOf: (uid) => r.displayName(uid),
    userOf: (uid) => r.members.get(uid)?.user || (uid === app.me.id ? app.me : null),
    editing,
    confirmingDelete,
    onReply: (m) => composer.setReplyTo(m),
    onStartEdit: (m) => { editing = { id: m.id, draft: m.content }; confirmingDelete = null; rerender(m.id); },
    onDraft: (text) => { if (editing) editing.draft = text; },
    onCancelEdit: () => { const id = editing?.id; editing = null; rerender(id); composer.focus(); },
    onSaveEdit: (m, text) => saveEdit(m, text),
    onAskDelete: (m) => {
      if (m.file_id) return askDeleteWithFile(m); // a dialog: the file may go too
      confirmingDelete = m.id;
      rerender(m.id);
    },
    onCancelDelete: () => { const id = confirmingDelete; confirmingDelete = null; rerender(id); },
    onDelete: (m) => deleteMessage(m),
    onReact: (m, emoji, on) => app.react(m, emoji, on).catch((err) => flash(`Reaction failed: ${err.message}`)),
    onJump,
    attachment: (m) => attachments.get(m),
    poll: (m) => polls.get(m),
    onRetry: (entry) => app.outbox.retry(entry.client_msg_id),
    onDiscard: (entry) => app.outbox.discard(entry.client_msg_id),
  });

  let lastPlaced = null; // older pages come in ascending order: each message goes right after the one before
  function place(li, seq) {
    const existing = elements.get(seq);
    elements.set(seq, li);
    if (existing) {
      existing.replaceWith(li);
      return;
    }
    // Most inserts are appends; walk back from the end to find the slot.
    const after = lastPlaced?.isConnected && Number(lastPlaced.dataset.seq) < seq ? lastPlaced : null;
    let before = null;
    if (after && (!after.nextElementSibling || Number(after.nextElementSibling.dataset.seq) > seq)) before = after.nextElementSibling;
    else {
      for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
        if (Number(node.dataset.seq) < seq) break;
        before = node;
      }
    }
    list.insertBefore(li, before);
    lastPlaced = li;
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

  const firstSeq = () => (list.firstElementChild ? Number(list.firstElementChild.dataset.seq) : null);

  /** Messages that arrived or changed → {appended, mine (one of them is ours), prepended (older ones came in above)}. */
  function apply(changed) {
    const topBefore = firstSeq();
    const c = ctx();
    let appended = 0;
    let mine = false;
    const ids = new Set();
    for (const m of changed) {
      if (m.deleted_at) {
        attachments.drop(m.id);
        polls.drop(m.id);
      }
      const isNew = !elements.has(m.seq);
      place(renderMessage(m, c), m.seq);
      ids.add(m.id);
      if (isNew && m.seq > (topBefore ?? 0)) {
        appended += 1;
        if (m.sender?.id === app.me.id) mine = true;
      }
    }
    // The message after a changed one may start or stop continuing its group; replies quoting
    // a changed message show its new text.
    for (const m of changed) {
      const next = r.messages.get(m.seq + 1);
      if (next && !ids.has(next.id)) place(renderMessage(next, c), next.seq);
    }
    for (const m of r.messages.values()) if (m.reply_to && ids.has(m.reply_to) && !ids.has(m.id)) place(renderMessage(m, c), m.seq);
    return { appended, mine, prepended: topBefore !== null && firstSeq() < topBefore };
  }

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

  // A file renamed or deleted (files.changed): its chips show the new name, or that it is gone.
  const offFiles = app.on('files', (ev) => {
    if (ev?.room !== roomId || !ev.files?.length) return;
    const ids = new Set(ev.files);
    for (const m of r.messages.values()) {
      if (m.file_id && ids.has(m.file_id) && !m.deleted_at) {
        attachments.drop(m.id);
        rerender(m.id);
      }
    }
  });

  async function deleteMessage(m) {
    confirmingDelete = null;
    try {
      await app.remove(m);
      return true;
    } catch (err) {
      flash(`Delete failed: ${err.message}`);
      rerender(m.id);
      return false;
    }
  }

  /**
   * A message with an attachment: the dialog also offers to delete the file (for its owner or a
   * room instructor), which removes it from the Files panel and kills its links at once.
   */
  async function askDeleteWithFile(m) {
    const file = await app.files.info(m.file_id).catch(() => null);
    const mayDeleteFile = !!file && (file.owner === app.me.id || app.isInstructor(roomId));
    const answer = await confirmWithChoice({
      title: 'Delete this message?',
      text: mayDeleteFile ? `It has the file “${file.name}” attached.` : 'The message is removed for everyone.',
      choice: mayDeleteFile ? 'Also delete the file from the room’s files (its links stop working)' : null,
      checked: false,
      confirmLabel: 'Delete',
    });
    if (!answer || !(await deleteMessage(m)) || !answer.choice) return;
    try {
      await api.request('DELETE', `/api/files/${encodeURIComponent(m.file_id)}`);
      app.files.forget(m.file_id);
      app.emit('files', { room: roomId, deleted: m.file_id });
    } catch (err) {
      flash(`The message was deleted, but not the file: ${err.message}`);
    }
  }

  return {
    list,
    seenBy: seen.el,
    pendingList,
    renderAll,
    apply,
    renderSeenBy: seen.render,
    renderPending() {
      const c = ctx();
      pendingList.replaceChildren(...app.outbox.forRoom(roomId).map((e) => renderPending(e, c)));
    },
    elementOf(messageId) {
      const m = r.byId(messageId);
      return (m && elements.get(m.seq)) || null;
    },
    destroy: () => {
      offFiles();
      attachments.clear();
      polls.clear();
    },
  };
}

/** One attachment view per message, kept across re-renders of the message: {get(m) → element, drop(id), clear()}. */
function createAttachmentCache(files) {
  const views = new Map(); // message id → {fileId, view}

  function drop(messageId) {
    views.get(messageId)?.view.destroy();
    views.delete(messageId);
  }

  return {
    get(m) {
      let a = views.get(m.id);
      if (a && a.fileId !== m.file_id) {
        a.view.destroy();
        a = null;
      }
      if (!a) {
        a = { fileId: m.file_id, view: createAttachment(files, m) };
        views.set(m.id, a);
      }
      return a.view.el;
    },
    drop,
    clear() {
      for (const id of [...views.keys()]) drop(id);
    },
  };
}

/** One poll card per poll message, kept across re-renders (a half-made choice survives live updates): {get(m), drop(id), clear()}. */
function createPollCache(app, flash) {
  const cards = new Map(); // message id → card

  function drop(messageId) {
    cards.get(messageId)?.destroy();
    cards.delete(messageId);
  }

  return {
    get(m) {
      let card = cards.get(m.id);
      if (card) card.update(m);
      else cards.set(m.id, card = createPollCard(app, m, { flash }));
      return card.el;
    },
    drop,
    clear() {
      for (const id of [...cards.keys()]) drop(id);
    },
  };
}

/** "Seen by …" under the newest message: who (other than us and its sender) has read it. */
function createSeenBy(app, r) {
  const el = h('p', { class: 'seen-by', testid: 'seen-by', hidden: true });

  function render() {
    const latest = r.latest();
    if (!latest) {
      el.hidden = true;
      return;
    }
    const names = [];
    for (const [uid, seq] of r.reads) {
      if (uid === app.me.id || uid === latest.sender?.id || seq < latest.seq) continue;
      names.push(r.displayName(uid) || 'someone');
    }
    names.sort((a, b) => a.localeCompare(b));
    el.textContent = names.length ? `Seen by ${joinNames(names, 4)}` : '';
    el.hidden = !names.length;
  }

  return { el, render };
}
