// A course room's LMS services (server/lti/, docs/LMS.md), for its instructors: the roster
// box in the people panel ("Sync roster now", when the LMS offers Names and Roles) and
// "Send to gradebook" in the attendance dialog (when it offers Assignment and Grade Services):
// a preview of each student's minutes and percent, then a confirm that sends the scores.

import * as api from '../api.js';
import { h } from '../dom.js';

const whenFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const statusCache = new Map(); // room id → Promise of GET /api/rooms/{id}/lti (null: not an LMS room)

/** GET /api/rooms/{id}/lti: {roster, gradebook, synced_at, sync_error}; null for a room that is no LMS course. */
export function lmsStatus(roomId, fresh = false) {
  if (fresh || !statusCache.has(roomId)) {
    statusCache.set(roomId, api.request('GET', `/api/rooms/${encodeURIComponent(roomId)}/lti`)
      .then((body) => body.lti)
      .catch((err) => {
        if (err.status !== 403) statusCache.delete(roomId); // try again next time
        return null;
      }));
  }
  return statusCache.get(roomId);
}

/** The people panel's roster box: hidden unless the viewer instructs a room with an LMS roster. */
export function createRosterBox(app, roomId) {
  const info = h('p', { class: 'form-note', testid: 'lti-roster-info' });
  const button = h('button', { type: 'button', class: 'btn btn-secondary btn-small', testid: 'lti-roster-sync', onclick: sync }, 'Sync roster now');
  const note = h('p', { class: 'form-note', role: 'status', testid: 'lti-roster-note' });
  const el = h('section', { class: 'add-member lms-roster', 'aria-label': 'LMS roster', hidden: true, style: 'margin-top:10px' },
    h('label', null, 'Roster from the LMS'), info, button, note);
  let destroyed = false;

  function show(status) {
    if (destroyed) return;
    el.hidden = !status || !status.roster || !app.isInstructor(roomId);
    if (el.hidden) return;
    const last = status.synced_at ? `Last synced ${whenFmt.format(Date.parse(status.synced_at))}.` : 'Not synced yet.';
    info.textContent = status.sync_error ? `${last} The last try failed: ${status.sync_error}` : last;
  }

  async function sync() {
    button.disabled = true;
    note.className = 'form-note';
    note.textContent = 'Syncing with the LMS…';
    try {
      const { sync: s } = await api.request('POST', `/api/rooms/${encodeURIComponent(roomId)}/lti/roster-sync`);
      note.textContent = `Synced: ${s.members} in the LMS course, ${s.added} added, ${s.removed} removed, ${s.updated} role${s.updated === 1 ? '' : 's'} changed.`;
      show(s);
      await app.refreshMembers(roomId).catch((err) => console.warn('members refresh failed', err));
    } catch (err) {
      note.className = 'form-note error';
      note.textContent = `Roster sync failed: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  }

  if (app.isInstructor(roomId) && app.rooms.get(roomId)?.kind === 'course') lmsStatus(roomId).then(show);
  const off = app.on('rooms', () => {
    if (app.isInstructor(roomId) && app.rooms.get(roomId)?.kind === 'course') lmsStatus(roomId).then(show);
  });
  return { el, destroy: () => { destroyed = true; off(); } };
}

/** "Send to gradebook" in the attendance dialog: a button, then the preview with a confirm. */
export function createGradebookSend(roomId, currentSessionId) {
  const panel = h('section', { class: 'lms-grades', testid: 'gradebook-preview', hidden: true, style: 'padding:0 22px 12px' });
  const button = h('button', { type: 'button', class: 'btn btn-secondary btn-small', testid: 'send-gradebook', hidden: true, onclick: preview },
    'Send to gradebook');
  lmsStatus(roomId).then((status) => { button.hidden = !status?.gradebook; });

  async function preview() {
    const sid = currentSessionId();
    panel.hidden = false;
    if (!sid) { // the dialog's call is still loading: say so rather than do nothing
      panel.replaceChildren(h('p', { class: 'form-note', role: 'status', testid: 'gradebook-note' }, 'The call’s attendance is still loading: try again in a moment.'));
      return;
    }
    panel.replaceChildren(h('p', { class: 'muted' }, 'Preparing the scores…'));
    let grades;
    try {
      ({ grades } = await api.request('GET', `/api/sessions/${encodeURIComponent(sid)}/lti-grades`));
    } catch (err) {
      panel.replaceChildren(h('p', { class: 'form-error' }, `Cannot prepare the scores: ${err.message}`));
      return;
    }
    const note = h('p', { class: 'form-note', role: 'status', testid: 'gradebook-note' });
    const confirm = h('button', {
      type: 'button', class: 'btn btn-primary btn-small', testid: 'confirm-gradebook', disabled: grades.live || !grades.scores.length,
      onclick: () => send(sid, confirm, note),
    }, grades.line_item ? `Send ${grades.scores.length} scores again` : `Send ${grades.scores.length} scores`);
    const cancel = h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => { panel.hidden = true; } }, 'Cancel');
    panel.replaceChildren(
      h('h3', { class: 'panel-subtitle' }, `Gradebook: “${grades.label}”, out of 100`),
      grades.live ? h('p', { class: 'form-error' }, 'The call is still live: send its attendance once it has ended.') : null,
      grades.line_item ? h('p', { class: 'muted' }, 'Sent before: sending again updates the same gradebook column.') : null,
      h('table', { class: 'lms-grades-table', style: 'width:100%;border-collapse:collapse;font-size:13.5px;text-align:left' },
        h('thead', null, h('tr', null, h('th', null, 'Student'), h('th', null, 'Minutes'), h('th', null, 'Score (% attended)'))),
        h('tbody', null, grades.scores.map((s) => h('tr', { testid: 'gradebook-row' },
          h('td', null, s.user.display_name || s.user.username), h('td', null, String(s.minutes)), h('td', null, `${s.percent}`))))),
      grades.skipped.length ? h('p', { class: 'muted' }, `Not sent: ${grades.skipped.map((s) => `${s.user.display_name} (${s.reason})`).join(', ')}.`) : null,
      h('div', { class: 'lms-grades-actions', style: 'display:flex;gap:8px;margin-top:10px' }, confirm, cancel),
      note);
  }

  async function send(sid, confirm, note) {
    confirm.disabled = true;
    note.className = 'form-note';
    note.textContent = 'Sending to the LMS…';
    try {
      const { grades } = await api.request('POST', `/api/sessions/${encodeURIComponent(sid)}/lti-grades`);
      note.textContent = `Sent ${grades.sent} score${grades.sent === 1 ? '' : 's'} to “${grades.label}”.`
        + (grades.failed.length ? ` Not accepted: ${grades.failed.map((f) => `${f.user.display_name} (${f.reason})`).join(', ')}.` : '');
    } catch (err) {
      note.className = 'form-note error';
      note.textContent = `Sending failed: ${err.message}`;
      confirm.disabled = false;
    }
  }

  return { button, panel, reset: () => { panel.hidden = true; } };
}
