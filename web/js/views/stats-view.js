// The Statistics dialog (room instructors): messages per day, active members and files of a room, from
// GET /api/rooms/{id}/statistics and GET /api/files/statistics?room=.

import * as api from '../api.js';
import { h } from '../dom.js';
import { formatSize } from '../files.js';
import { openModal } from './modal.js';

const KIND_LABEL = { text: 'text', file: 'file', announcement: 'announcement', poll: 'poll', system: 'system notice' };
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Open the Statistics dialog of a room (closing any other one). Deleted messages are not counted. */
export function openStatsPanel(app, roomId) {
  const roomName = app.roomTitle(roomId) || 'this room';
  const body = h('div', { class: 'stats-body', testid: 'stats-body' }, h('p', { class: 'muted' }, 'Loading statistics…'));
  let closed = false;
  const { dialog } = openModal({
    testid: 'stats-panel', className: 'stats-modal', titleId: 'stats-title', title: 'Statistics', subtitle: roomName,
    closeTestid: 'close-stats', body: [body], onClose: () => { closed = true; },
  });
  load();

  async function load() {
    let stats;
    let files;
    try {
      [stats, files] = await Promise.all([api.roomStatistics(roomId), api.fileStatistics(roomId)]);
    } catch (err) {
      if (!closed) body.replaceChildren(h('p', { class: 'form-error', testid: 'stats-error', role: 'alert' }, `Cannot load this room’s statistics: ${err.message}`));
      return;
    }
    if (!closed) render(stats, files);
  }

  function render(stats, files) {
    const roster = app.store.room(roomId).members; // user id → member, once room.join answered
    const members = roster.size || app.rooms.get(roomId)?.members_count || 0;
    const people = (stats.by_sender || []).filter((s) => s.user_id !== null); // system notices have no sender
    // Writers who left the room still count in the totals, not among the members.
    const active = roster.size ? people.filter((p) => roster.has(p.user_id)).length : people.length;
    body.replaceChildren(
      h('div', { class: 'stats-tiles' },
        tile('stats-total', String(stats.total || 0), 'messages', kindsText(stats.by_kind || {})),
        tile('stats-active', members ? `${active} of ${members}` : String(active), 'members wrote', 'at least one message'),
        tile('stats-files', String(files.files || 0), files.files === 1 ? 'file' : 'files', formatSize(files.bytes || 0))),
      section('Messages per day', 'UTC days with at least one message, newest first', perDay(stats.per_day || [])),
      section('Members', 'Messages each member wrote', bySender(people, stats.total || 0, roster)),
      section('Files by type', null, byCategory(files.by_category || [])));
  }

  return dialog;
}

function tile(testid, value, label, note) {
  return h('div', { class: 'stats-tile', testid },
    h('strong', { class: 'stats-value', testid: `${testid}-value` }, value),
    h('span', { class: 'stats-label' }, label),
    note ? h('span', { class: 'stats-note muted' }, note) : null);
}

function section(title, note, content) {
  return h('section', { class: 'stats-section' },
    h('h3', {}, title), note ? h('p', { class: 'stats-note muted' }, note) : null, content);
}

/** "40 text · 2 file · 1 poll" → the kinds with their counts, the largest first. */
function kindsText(byKind) {
  return Object.entries(byKind).sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => `${n} ${KIND_LABEL[kind] || kind}`).join(' · ');
}

/** Rows of `label`, a bar as long as its share of the largest count, and the count. */
function bars(rows, testid) {
  const max = Math.max(1, ...rows.map((r) => r.count));
  return h('ol', { class: 'stats-bars' }, rows.map((row) =>
    h('li', { class: 'stats-row', testid, dataset: row.data },
      h('span', { class: 'stats-row-label' }, row.label),
      h('span', { class: 'stats-bar', 'aria-hidden': 'true' }, fill((100 * row.count) / max)),
      h('span', { class: 'stats-row-count', testid: `${testid}-count` }, row.text ?? String(row.count)))));
}

function fill(percent) {
  const el = h('span', {});
  el.style.width = `${percent}%`;
  return el;
}

function perDay(days) {
  if (!days.length) return h('p', { class: 'muted' }, 'No messages yet.');
  return bars([...days].reverse().map((d) => ({ label: d.day, count: d.count, data: { day: d.day } })), 'stats-day');
}

function bySender(people, total, roster) {
  if (!people.length) return h('p', { class: 'muted' }, 'Nobody has written yet.');
  const left = (p) => roster.size && !roster.has(p.user_id);
  return bars(people.map((p) => ({
    label: `${p.display_name || 'Unknown'}${left(p) ? ' (left)' : ''}`, count: p.count, data: { userId: p.user_id },
    text: `${p.count}${total ? ` (${Math.round((100 * p.count) / total)}%)` : ''}`,
  })), 'stats-member');
}

function byCategory(categories) {
  const used = categories.filter((c) => c.files);
  if (!used.length) return h('p', { class: 'muted' }, 'No files shared yet.');
  return bars(used.map((c) => ({
    label: c.category, count: c.files, data: { category: c.category },
    text: `${plural(c.files, 'file')}, ${formatSize(c.bytes)}`,
  })), 'stats-category');
}
