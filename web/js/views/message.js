// One chat message as a DOM element. All message text goes in through text nodes.
//
// ctx: {me, canModerate, lookup(id) → message|null, nameOf(userId) → string|null,
//       attachment(m) → element (the chat view keeps one per message across re-renders, so a
//       playing video keeps playing when its message changes), poll(m) → element (likewise),
//       editing: {id, draft}|null, confirmingDelete: id|null,
//       onReply(m), onStartEdit(m), onDraft(text), onSaveEdit(m, text), onCancelEdit(),
//       onAskDelete(m), onDelete(m), onCancelDelete(), onReact(m, emoji, on), onJump(id)}

import { h, linkify, avatarFor, formatTime, formatFullTime } from '../dom.js';
import { REACTION_EMOJI } from '../app.js';
import { icon } from '../icons.js';
import { formatSize } from '../files.js';

const SNIPPET_CHARS = 140;
const ATTACHMENT_LABEL = { image: 'Image', video: 'Video', audio: 'Audio', file: 'File' };
const GROUP_WINDOW_MS = 5 * 60 * 1000;

const dayKey = (iso) => new Date(iso).toDateString();

/** The day label shown above the first message of each day. */
function dayLabel(iso) {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today);
  yesterday.setDate(today.getDate() - 1);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return d.toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: d.getFullYear() === today.getFullYear() ? undefined : 'numeric' });
}

/** A message continues the previous one (same sender, a few minutes apart): no repeated header. */
function continues(m, prev) {
  if (!prev || prev.kind === 'system' || m.kind === 'system' || m.kind === 'announcement' || prev.kind === 'announcement') return false;
  if (!m.sender?.id || prev.sender?.id !== m.sender.id || m.reply_to) return false;
  if (dayKey(prev.created_at) !== dayKey(m.created_at)) return false;
  return new Date(m.created_at) - new Date(prev.created_at) < GROUP_WINDOW_MS;
}

export function snippet(text) {
  const flat = String(text || '').replace(/\s+/g, ' ').trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS - 1)}…` : flat;
}

export function renderMessage(m, ctx) {
  const mine = m.sender?.id === ctx.me.id;
  const deleted = !!m.deleted_at;
  const prev = ctx.previous(m);
  const continued = continues(m, prev);
  const classes = ['msg', `kind-${m.kind}`];
  if (mine) classes.push('mine');
  if (deleted) classes.push('deleted');
  if (continued) classes.push('continued');

  const li = h('li', {
    class: classes.join(' '),
    id: `msg-${m.id}`,
    testid: 'message',
    dataset: { seq: String(m.seq), messageId: m.id, kind: m.kind, senderId: m.sender?.id || '' },
  });
  if (!prev || dayKey(prev.created_at) !== dayKey(m.created_at)) {
    li.append(h('div', { class: 'day-divider', role: 'separator' }, h('span', {}, dayLabel(m.created_at))));
  }

  if (m.kind === 'system') {
    li.append(h('div', { class: 'msg-row' }, h('div', { class: 'system-line' },
      h('span', { class: 'msg-content', testid: 'message-content' }, systemContent(m.content || '')),
      h('time', { datetime: m.created_at, title: formatFullTime(m.created_at) }, formatTime(m.created_at)))));
    return li;
  }

  // The member's current name (after a rename) before the one the message was sent under.
  const name = ctx.nameOf(m.sender?.id) || m.sender?.display_name || 'Unknown';
  const edited = m.edited_at && !deleted
    ? h('span', { class: 'msg-edited', title: `Edited ${formatFullTime(m.edited_at)}` }, '(edited)')
    : null;
  const body = h('div', { class: 'msg-body' });
  if (continued) {
    // Same sender as the message above: the time shows in the gutter on hover.
    body.append(h('time', { class: 'msg-time gutter-time', datetime: m.created_at, title: formatFullTime(m.created_at) },
      h('span', { class: 'sr-only' }, `${name}, `), formatTime(m.created_at).replace(/^.*, /, '')));
  } else {
    body.append(h('div', { class: 'msg-meta' },
      h('span', { class: 'msg-author' }, name),
      m.kind === 'announcement' ? h('span', { class: 'tag tag-announcement' }, icon('megaphone', { size: 13 }), 'Announcement') : null,
      h('time', { class: 'msg-time', datetime: m.created_at, title: formatFullTime(m.created_at) }, formatTime(m.created_at)),
      edited));
  }
  if (m.reply_to && !deleted) body.append(renderQuote(m.reply_to, ctx));

  if (deleted) {
    body.append(h('div', { class: 'msg-content msg-deleted', testid: 'message-content' }, 'message deleted'));
  } else if (ctx.editing?.id === m.id) {
    body.append(renderEditor(m, ctx));
  } else if (m.kind === 'poll' && m.poll) {
    body.append(ctx.poll(m)); // the question, options and results (poll-card.js)
  } else {
    const content = h('div', { class: 'msg-content', testid: 'message-content' });
    content.append(linkify(m.content || ''));
    body.append(continued && edited ? h('div', { class: 'msg-line' }, content, edited) : content);
    if (m.file_id) body.append(ctx.attachment(m));
  }
  if (!deleted) {
    const chips = renderReactions(m, ctx);
    if (chips) body.append(chips);
  }

  // Rows are focusable by the arrow keys (chat.js), which reveals their action buttons.
  const row = h('div', { class: 'msg-row', tabindex: '-1' },
    continued
      ? h('div', { class: 'avatar-spacer', 'aria-hidden': 'true' })
      : avatarFor(ctx.userOf(m.sender?.id) || { id: m.sender?.id }, { name }),
    body);
  if (!deleted && ctx.editing?.id !== m.id) row.append(renderActions(m, ctx, mine));
  li.append(row);
  return li;
}

// A recording's playback page named in a system message ("Recording ready: … watch it:
// /#/recordings/12", with PUBLIC_URL in front when set) becomes a link that opens it here.
const WATCH_RE = /(?:watch it: )?((?:https?:\/\/[^\s/]+)?\/#\/recordings\/\d+[^\s]*)/gi;

function systemContent(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(WATCH_RE)) {
    const url = match[1];
    const here = !/^https?:/.test(url) || url.startsWith(`${location.origin}/`);
    frag.append(text.slice(last, match.index), h('a', here
      ? { href: url.slice(url.indexOf('#')), testid: 'recording-link' }
      : { href: url, testid: 'recording-link', target: '_blank', rel: 'noopener noreferrer' }, 'Watch the recording'));
    last = match.index + match[0].length;
  }
  frag.append(text.slice(last));
  return frag;
}

function renderQuote(replyId, ctx) {
  const original = ctx.lookup(replyId);
  let text;
  let author = null;
  if (!original) text = 'Earlier message';
  else if (original.deleted_at) text = 'message deleted';
  else {
    author = original.sender?.display_name || ctx.nameOf(original.sender?.id);
    text = snippet(original.content) || (original.file_id ? ATTACHMENT_LABEL[original.kind] || 'File' : '');
  }
  return h('button', {
    type: 'button', class: 'reply-quote', testid: 'reply-quote',
    'aria-label': `Replying to ${author || 'a message'}: ${text}. Show original.`,
    onclick: () => ctx.onJump(replyId),
  }, author ? h('span', { class: 'quote-author' }, author) : null, h('span', { class: 'quote-text' }, text));
}

function renderEditor(m, ctx) {
  const area = h('textarea', { class: 'edit-input', 'aria-label': 'Edit message', rows: '2', testid: 'edit-input' });
  area.value = ctx.editing.draft ?? m.content;
  area.addEventListener('input', () => ctx.onDraft(area.value));
  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') ctx.onCancelEdit();
    else if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      ctx.onSaveEdit(m, area.value);
    }
  });
  queueMicrotask(() => {
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  });
  return h('form', { class: 'edit-form', onsubmit: (ev) => { ev.preventDefault(); ctx.onSaveEdit(m, area.value); } },
    area,
    h('div', { class: 'edit-actions' },
      h('span', { class: 'hint' }, 'Enter to save · Esc to cancel'),
      h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => ctx.onCancelEdit() }, 'Cancel'),
      h('button', { type: 'submit', class: 'btn btn-primary btn-small', testid: 'edit-save' }, 'Save')));
}

function renderReactions(m, ctx) {
  const entries = Object.entries(m.reactions || {}).filter(([, users]) => users && users.length);
  if (!entries.length) return null;
  return h('div', { class: 'reactions' }, entries.map(([emoji, users]) => {
    const mine = users.includes(ctx.me.id);
    const names = users.map((id) => (id === ctx.me.id ? 'You' : ctx.nameOf(id) || 'Someone'));
    return h('button', {
      type: 'button', class: `reaction${mine ? ' mine' : ''}`, testid: 'reaction',
      dataset: { emoji }, 'aria-pressed': String(mine), title: names.join(', '),
      'aria-label': `${emoji} ${users.length}: ${names.join(', ')}. ${mine ? 'Remove' : 'Add'} your reaction.`,
      onclick: () => ctx.onReact(m, emoji, !mine),
    }, h('span', { class: 'reaction-emoji' }, emoji), h('span', { class: 'reaction-count' }, String(users.length)));
  }));
}

function renderActions(m, ctx, mine) {
  if (ctx.confirmingDelete === m.id) {
    return h('div', { class: 'msg-actions confirming', role: 'group', 'aria-label': 'Confirm delete' },
      h('span', { class: 'confirm-text' }, 'Delete this message?'),
      h('button', { type: 'button', class: 'btn btn-danger btn-small', testid: 'confirm-delete', onclick: () => ctx.onDelete(m) }, 'Delete'),
      h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => ctx.onCancelDelete() }, 'Cancel'));
  }
  const reacted = (emoji) => (m.reactions?.[emoji] || []).includes(ctx.me.id);
  const canEdit = mine && (m.kind === 'text' || m.kind === 'announcement');
  const canDelete = mine || ctx.canModerate;
  return h('div', { class: 'msg-actions', role: 'toolbar', 'aria-label': 'Message actions' },
    REACTION_EMOJI.map((emoji) => h('button', {
      type: 'button', class: 'act act-emoji', testid: 'react', dataset: { emoji },
      'aria-label': `React with ${emoji}`, 'aria-pressed': String(reacted(emoji)), title: `React with ${emoji}`,
      onclick: () => ctx.onReact(m, emoji, !reacted(emoji)),
    }, emoji)),
    h('span', { class: 'act-sep', 'aria-hidden': 'true' }),
    h('button', { type: 'button', class: 'act', testid: 'reply', onclick: () => ctx.onReply(m) }, 'Reply'),
    canEdit ? h('button', { type: 'button', class: 'act', testid: 'edit', onclick: () => ctx.onStartEdit(m) }, 'Edit') : null,
    canDelete ? h('button', { type: 'button', class: 'act act-danger', testid: 'delete', onclick: () => ctx.onAskDelete(m) }, 'Delete') : null);
}

/** An outbox entry shown at the end of the list until the server stores it. */
export function renderPending(entry, ctx) {
  const failed = entry.status === 'failed';
  const state = failed
    ? h('span', { class: 'pending-state failed', role: 'alert' }, `Not sent: ${entry.error || 'refused'}`)
    : h('span', { class: 'pending-state' }, ctx.online ? 'Sending…' : 'Waiting for connection…');
  return h('li', {
    class: `msg mine pending${failed ? ' failed' : ''} kind-${entry.kind}`,
    testid: 'pending-message',
    dataset: { clientMsgId: entry.client_msg_id },
  }, h('div', { class: 'msg-row' },
    avatarFor(ctx.me),
    h('div', { class: 'msg-body' },
      h('div', { class: 'msg-meta' }, h('span', { class: 'msg-author' }, ctx.me.display_name || 'You'), state),
      entry.reply_to ? renderQuote(entry.reply_to, ctx) : null,
      entry.content ? h('div', { class: 'msg-content' }, entry.content) : null,
      entry.file_id ? h('div', { class: 'attachment attachment-pending', testid: 'pending-attachment' },
        h('span', { class: 'file-chip' },
          h('span', { class: 'file-chip-icon', 'aria-hidden': 'true' }, icon('file', { size: 20 })),
          h('span', { class: 'file-chip-text' },
            h('span', { class: 'file-name' }, entry.file?.name || 'Attachment'),
            entry.file ? h('span', { class: 'file-size' }, formatSize(entry.file.size)) : null))) : null,
      failed ? h('div', { class: 'pending-actions' },
        h('button', { type: 'button', class: 'btn btn-small btn-secondary', onclick: () => ctx.onRetry(entry) }, 'Retry'),
        h('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: () => ctx.onDiscard(entry) }, 'Discard')) : null)));
}
