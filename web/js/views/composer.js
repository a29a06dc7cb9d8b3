// The message composer: text, reply preview, announcement toggle, typing notices, attach button and upload rows.
//
// Message composer: textarea (Enter sends, Shift+Enter new line), reply preview,
// announcement toggle for instructors, typing notices, and the attach button (files chosen or
// pasted are uploaded with a progress row each, then posted; drag-and-drop is in chat-drop.js).

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { snippet } from './message.js';
import { createUploadList } from './attachment.js';
import { pollButton } from './poll-card.js';
import { openPollComposer } from './poll-composer.js';

const MAX_BYTES = 16 * 1024;
const encoder = new TextEncoder();

export function createComposer(app, roomId, { roomName, onSent }) {
  let replyTo = null;

  const area = h('textarea', {
    id: 'composer-input', class: 'composer-input', testid: 'composer', rows: '1',
    placeholder: `Message ${roomName}`, 'aria-label': `Message ${roomName}`, maxlength: String(MAX_BYTES),
  });
  const send = h('button', { type: 'submit', class: 'btn btn-primary send-btn', testid: 'send', 'aria-label': 'Send message' },
    h('span', { class: 'send-label' }, 'Send'), icon('send', { size: 17 }));
  const announce = h('input', { type: 'checkbox', id: 'composer-announce', testid: 'announcement-toggle' });
  const announceLabel = h('label', { class: 'announce-toggle', for: 'composer-announce', title: 'Post as an announcement (instructors only)', hidden: true },
    announce, icon('megaphone', { size: 15 }), h('span', {}, 'Announcement'));
  const newPoll = pollButton(() => openPollComposer(app, roomId));
  newPoll.hidden = true; // instructors only (setInstructor)
  const replyText = h('span', { class: 'reply-preview-text' });
  const replyBar = h('div', { class: 'reply-preview', hidden: true, testid: 'reply-preview' },
    h('span', { class: 'reply-preview-label' }, 'Replying to'),
    replyText,
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Cancel reply', onclick: () => setReplyTo(null) }, icon('close', { size: 16 })));
  const error = h('p', { class: 'composer-error', role: 'alert', hidden: true });
  const fileInput = h('input', {
    type: 'file', multiple: true, hidden: true, testid: 'attach-input', tabindex: '-1', 'aria-hidden': 'true',
    onchange: () => {
      if (fileInput.files.length) app.attach(roomId, fileInput.files);
      fileInput.value = ''; // choosing the same file again must fire 'change' again
    },
  });
  const attach = h('button', {
    type: 'button', class: 'icon-btn attach-btn', testid: 'attach', 'aria-label': 'Attach files',
    title: 'Attach files (or drop them on the chat)', onclick: () => fileInput.click(),
  }, icon('paperclip', { size: 19 }));
  const uploads = createUploadList(app, (e) => e.room === roomId && e.post, { label: 'Files being uploaded' });

  const el = h('form', { class: 'composer', onsubmit: submit, 'aria-label': 'Write a message' },
    replyBar,
    uploads.el,
    h('div', { class: 'composer-row' }, attach, fileInput, area, send),
    h('div', { class: 'composer-foot' },
      announceLabel,
      newPoll,
      h('span', { class: 'hint composer-hint' }, 'Enter to send · Shift+Enter for a new line'),
      error));

  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      el.requestSubmit();
    } else if (ev.key === 'Escape' && replyTo) {
      setReplyTo(null);
    }
  });
  area.addEventListener('input', () => {
    autosize();
    showError(null);
    if (area.value.trim()) app.typing.input(roomId);
    else app.typing.stop();
  });
  announce.addEventListener('change', () => el.classList.toggle('announcing', announce.checked));
  area.addEventListener('paste', (ev) => {
    const files = ev.clipboardData?.files;
    if (!files?.length) return; // plain text pastes as usual
    ev.preventDefault();
    app.attach(roomId, files);
  });

  function autosize() {
    area.style.height = 'auto';
    area.style.height = `${Math.min(area.scrollHeight, 200)}px`;
  }

  function submit(ev) {
    ev.preventDefault();
    const content = area.value.trim();
    if (!content) return;
    if (encoder.encode(content).length > MAX_BYTES) return showError('This message is too long (16 KB at most).');
    const kind = announce.checked && !announceLabel.hidden ? 'announcement' : 'text';
    app.send(roomId, { content, kind, reply_to: replyTo?.id || null });
    area.value = '';
    announce.checked = false;
    el.classList.remove('announcing');
    setReplyTo(null);
    autosize();
    area.focus();
    onSent();
  }

  function setReplyTo(message) {
    replyTo = message;
    replyBar.hidden = !message;
    if (message) {
      replyText.textContent = `${message.sender?.display_name || 'message'}: ${snippet(message.content)}`;
      area.focus();
    }
  }

  function showError(message) {
    error.textContent = message || '';
    error.hidden = !message;
  }

  function setInstructor(isInstructor) {
    announceLabel.hidden = !isInstructor;
    newPoll.hidden = !isInstructor;
    if (!isInstructor) announce.checked = false;
  }

  function setRoomName(name) {
    area.placeholder = `Message ${name}`;
    area.setAttribute('aria-label', `Message ${name}`);
  }

  return { el, setReplyTo, setInstructor, setRoomName, focus: () => area.focus(), destroy: () => uploads.destroy() };
}
