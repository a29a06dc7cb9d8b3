// The chat's header: the room's name, kind and member/online counts, and its Search, Start call, Attendance, Files, Recordings,
// Statistics (instructors) and People buttons.

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { createCallHeaderActions } from './call.js';
import { openFilesPanel } from './files-panel.js';
import { openRecordingsPanel } from './recordings-panel.js';
import { openStatsPanel } from './stats-view.js';
import { createChatRules } from './chat-rules.js';

const KIND_LABEL = { course: 'Course', group: 'Group', direct: 'Direct message' };

/** {el, render() → the room's display name, destroy()}; `onSearch()` when Search is pressed. */
export function createChatHeader(app, roomId, { flash, onSearch = () => {} } = {}) {
  const r = app.store.room(roomId);
  const rules = createChatRules(app, roomId, { flash: flash || ((text) => console.warn(text)) }); // instructors: lock, slow mode
  const title = h('h2', { class: 'chat-title', testid: 'chat-title' });
  const subtitle = h('p', { class: 'chat-subtitle muted', testid: 'chat-subtitle' });
  const callActions = createCallHeaderActions(app, roomId);
  const stats = h('button', {
    type: 'button', class: 'btn btn-secondary btn-small', testid: 'open-statistics', 'aria-label': 'Statistics', hidden: true,
    title: 'Messages per day, active members and files of this room', onclick: () => openStatsPanel(app, roomId),
  }, icon('chart', { size: 16 }), h('span', { class: 'btn-label' }, 'Statistics'));
  // The actions wrap under the title when the header is narrow; on phones Files and
  // Recordings show only their icons (with an aria-label).
  const el = h('header', { class: 'chat-header' },
    h('div', { class: 'chat-heading' }, title, subtitle),
    h('div', { class: 'chat-header-actions' },
      h('button', {
        type: 'button', class: 'btn btn-secondary btn-small', testid: 'open-search', 'aria-label': 'Search messages',
        title: 'Search this room’s messages', onclick: () => onSearch(),
      }, icon('search', { size: 16 })),
      rules.el,
      callActions.el,
      h('button', {
        type: 'button', class: 'btn btn-secondary btn-small', testid: 'open-files', 'aria-label': 'Files',
        title: 'Files shared in this room', onclick: () => openFilesPanel(app, roomId),
      }, icon('folder', { size: 16 }), h('span', { class: 'btn-label' }, 'Files')),
      h('button', {
        type: 'button', class: 'btn btn-secondary btn-small', testid: 'open-recordings', 'aria-label': 'Recordings',
        title: 'Recordings of this room’s calls', onclick: () => openRecordingsPanel(app, roomId),
      }, icon('film', { size: 16 }), h('span', { class: 'btn-label' }, 'Recordings')),
      stats,
      h('button', {
        type: 'button', class: 'btn btn-secondary btn-small only-medium', testid: 'toggle-people',
        'aria-controls': 'people-panel', onclick: () => app.emit('people-toggle'),
      }, icon('group', { size: 16 }), 'People')));

  function render() {
    const room = app.rooms.get(roomId) || { id: roomId, name: '', kind: null };
    const name = app.roomTitle(roomId) || room.name || 'Room';
    title.textContent = name;
    const count = r.members.size || room.members_count || 0;
    const parts = room.kind ? [KIND_LABEL[room.kind] || room.kind] : [];
    if (count) parts.push(`${count} member${count === 1 ? '' : 's'}`);
    if (r.online.size) parts.push(`${r.online.size} online`);
    subtitle.textContent = parts.join(' · ');
    stats.hidden = !app.isInstructor(roomId);
    return name;
  }

  return { el, render, destroy: () => { callActions.destroy(); rules.destroy(); } };
}
