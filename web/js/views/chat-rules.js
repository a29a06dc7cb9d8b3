// The instructors' chat rules in the chat header: lock the chat (students read-only) and slow mode (moderation.js).

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { SLOW_MODE_CHOICES } from '../moderation.js';
import * as api from '../api.js';
import { askText, confirmAction } from './confirm.js';

/** {el, render(), destroy()}; hidden for students and in direct rooms. */
export function createChatRules(app, roomId, { flash }) {
  const mod = app.moderation;
  const lock = h('button', { type: 'button', class: 'btn btn-secondary btn-small', testid: 'lock-chat', onclick: () => change({ chat_locked: !mod.rules(roomId).locked }) });
  const slow = h('select', { class: 'select-small', testid: 'slow-mode', 'aria-label': 'Slow mode', onchange: () => change({ slow_mode_s: Number(slow.value) }) },
    ...SLOW_MODE_CHOICES.map((s) => h('option', { value: String(s) }, s ? `Slow mode: ${s >= 60 ? `${s / 60} min` : `${s} s`}` : 'Slow mode: off')));
  // The room's picture (group and course rooms): shown in everyone's room list.
  const file = h('input', { type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', hidden: true, testid: 'room-picture-input',
    onchange: () => setPicture(file.files[0]) });
  const picture = h('button', { type: 'button', class: 'btn btn-secondary btn-small', testid: 'room-picture', title: 'Set this room’s picture',
    onclick: () => file.click() }, icon('user', { size: 16 }), h('span', { class: 'btn-label' }, 'Picture'));
  // Rename the room, archive it (read-only, hidden from the room list) or unarchive it.
  const rename = h('button', { type: 'button', class: 'btn btn-secondary btn-small', testid: 'rename-room', title: 'Rename this room',
    onclick: () => renameRoom() }, icon('bookmark', { size: 16 }), h('span', { class: 'btn-label' }, 'Rename'));
  const archive = h('button', { type: 'button', class: 'btn btn-secondary btn-small', testid: 'archive-room', onclick: () => toggleArchive() });
  const el = h('div', { class: 'chat-rules', hidden: true }, lock, slow, picture, file, rename, archive);

  async function updateRoom(fields, what) {
    try {
      const data = await api.request('PATCH', `/api/rooms/${roomId}`, fields);
      app.onRoomUpdated({ id: roomId, name: data.room.name, archived_at: data.room.archived_at });
    } catch (err) {
      flash(`Could not ${what}: ${err.message}`);
    }
  }

  async function renameRoom() {
    const room = app.rooms.get(roomId);
    const name = await askText({ title: 'Rename room', text: room?.name || '', label: 'Room name', value: room?.name || '', confirmLabel: 'Rename' });
    if (name !== null && name !== room?.name) await updateRoom({ name }, 'rename the room');
  }

  async function toggleArchive() {
    const archived = !!app.rooms.get(roomId)?.archived_at;
    if (!archived && !(await confirmAction({ title: 'Archive this room?',
      text: `Nobody can send messages, share files or start calls in it until it is unarchived.${app.calls.liveSession(roomId) ? ' The call going on in it ends for everyone.' : ''} It is hidden from the room list (“Show archived” shows it).`,
      confirmLabel: 'Archive', danger: false }))) return;
    await updateRoom({ archived: !archived }, archived ? 'unarchive the room' : 'archive the room');
  }

  async function setPicture(blob) {
    if (!blob) return;
    try {
      const data = await api.request('PUT', `/api/rooms/${roomId}/avatar`, undefined, { raw: blob });
      app.onRoomUpdated({ id: roomId, avatar: data.avatar });
    } catch (err) {
      flash(`Could not set the room's picture: ${err.message}`);
    }
    file.value = '';
  }

  async function change(fields) {
    lock.disabled = slow.disabled = true;
    try {
      await mod.set(roomId, fields);
    } catch (err) {
      flash(`Could not change the chat's rules: ${err.message}`);
    }
    lock.disabled = slow.disabled = false;
    render();
  }

  function render() {
    const room = app.rooms.get(roomId);
    el.hidden = !app.isInstructor(roomId) || !room || room.kind === 'direct';
    const { locked, slowS } = mod.rules(roomId);
    lock.replaceChildren(icon(locked ? 'lock' : 'unlock', { size: 16 }), h('span', { class: 'btn-label' }, locked ? 'Unlock chat' : 'Lock chat'));
    lock.dataset.state = locked ? 'on' : 'off';
    lock.title = locked ? 'Let students send messages again' : 'Only instructors can send messages while the chat is locked';
    if (!SLOW_MODE_CHOICES.includes(slowS)) slow.append(h('option', { value: String(slowS) }, `Slow mode: ${slowS} s`));
    slow.value = String(slowS);
    const archived = !!room?.archived_at;
    archive.replaceChildren(icon('folder', { size: 16 }), h('span', { class: 'btn-label' }, archived ? 'Unarchive' : 'Archive'));
    archive.dataset.state = archived ? 'on' : 'off';
    archive.title = archived ? 'Make this room writable again' : 'Make this room read-only and hide it from the room list';
    lock.hidden = slow.hidden = archived;
  }

  const offs = [app.on('moderation', (id) => { if (id === roomId) render(); }), app.on('rooms', render)];
  render();
  return { el, render, destroy: () => offs.forEach((off) => off()) };
}
