// The Attendance dialog (instructors): per session, a timeline bar per attendee, minutes and percent, CSV download.
//
// Attendance for a room's calls (instructors): pick a session, see one row per attendee with
// a bar for every stretch they were in the call, laid out on the session's timeline, their
// total minutes and percent of the session, and download the CSV.

import * as api from '../api.js';
import { h, initials, hueFor } from '../dom.js';
import { icon } from '../icons.js';
import { openModal } from './modal.js';
import { createGradebookSend } from './lms.js';

const TICK_STEPS_MIN = [1, 2, 5, 10, 15, 20, 30, 60, 120, 240];
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const timeSecFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });

/** Open the attendance view for a room (optionally preselecting one session). */
export function openAttendance(app, roomId, sessionId = null) {
  const roomName = app.roomTitle(roomId) || 'this room';
  const select = h('select', { id: 'attendance-session', testid: 'attendance-session', 'aria-label': 'Call session', disabled: true });
  const summary = h('p', { class: 'att-summary muted', testid: 'attendance-summary' });
  const body = h('div', { class: 'att-body' }, h('p', { class: 'att-empty muted' }, 'Loading calls…'));
  const csv = h('a', { href: '#', class: 'btn btn-secondary btn-small', testid: 'download-csv', hidden: true, onclick: (ev) => downloadCsv(ev) },
    icon('download', { size: 15 }), 'Download CSV');
  const note = h('span', { class: 'form-note', role: 'status' });
  const refresh = h('button', { type: 'button', class: 'btn btn-ghost btn-small', hidden: true, onclick: () => load(select.value) }, 'Refresh');
  const gradebook = createGradebookSend(roomId, () => current?.session?.id); // LMS rooms (lms.js)

  let current = null; // {session, attendees}
  let blobUrl = null;
  let destroyed = false;
  const { dialog } = openModal({
    testid: 'attendance-view', className: 'attendance-modal', titleId: 'attendance-title', title: 'Attendance',
    subtitle: roomName, closeTestid: 'close-attendance',
    body: [
      h('div', { class: 'att-controls' },
        h('label', { for: 'attendance-session' }, 'Call'), select, refresh),
      summary,
      body,
      gradebook.panel,
      h('footer', { class: 'modal-foot' }, note, gradebook.button, csv),
    ],
    onClose() {
      destroyed = true;
      if (blobUrl) URL.revokeObjectURL(blobUrl);
    },
  });
  select.addEventListener('change', () => load(select.value));
  loadSessions();

  async function loadSessions() {
    let sessions;
    try {
      ({ sessions = [] } = await api.roomSessions(roomId, 50));
    } catch (err) {
      body.replaceChildren(h('p', { class: 'form-error' }, `Cannot load this room’s calls: ${err.message}`));
      return;
    }
    if (destroyed) return;
    if (!sessions.length) {
      body.replaceChildren(h('p', { class: 'att-empty muted' }, 'No calls yet in this room. Attendance appears here once a call has started.'));
      return;
    }
    select.replaceChildren(...sessions.map((s) => h('option', { value: s.id }, sessionLabel(s))));
    select.disabled = sessions.length < 2;
    select.value = sessionId && sessions.some((s) => String(s.id) === String(sessionId)) ? String(sessionId) : String(sessions[0].id);
    await load(select.value);
  }

  async function load(id) {
    note.textContent = '';
    gradebook.reset();
    csv.hidden = true;
    if (blobUrl) {
      URL.revokeObjectURL(blobUrl);
      blobUrl = null;
    }
    body.classList.add('loading');
    try {
      const data = await api.attendance(id);
      if (destroyed || String(select.value) !== String(id)) return;
      current = data;
      render(data);
      csv.hidden = false;
      csv.setAttribute('download', `attendance-${safeName(roomName)}-${id}.csv`);
    } catch (err) {
      if (!destroyed) body.replaceChildren(h('p', { class: 'form-error' }, `Cannot load attendance: ${err.message}`));
    } finally {
      body.classList.remove('loading');
    }
  }

  function render({ session, attendees = [] }) {
    const live = !session.ended_at;
    refresh.hidden = !live;
    const timeline = sessionTimeline(session);
    summary.textContent = summaryText(timeline, attendees);
    if (!attendees.some((a) => a.intervals.length)) {
      body.replaceChildren(h('p', { class: 'att-empty muted' }, 'Nobody joined this call.'),
        ...(attendees.length ? [attendanceChart(timeline, attendees)] : []));
      return;
    }
    const legend = live ? h('p', { class: 'att-legend muted' }, h('span', { class: 'att-swatch open', 'aria-hidden': 'true' }), 'Still in the call (the bar grows until they leave). Refresh for the latest.') : null;
    body.replaceChildren(attendanceChart(timeline, attendees), ...(legend ? [legend] : [])); // (a null child would show as "null")
  }

  async function downloadCsv(ev) {
    if (blobUrl) return; // the second, programmatic click follows the blob URL
    ev.preventDefault();
    if (!current) return;
    note.className = 'form-note';
    note.textContent = 'Preparing the CSV…';
    try {
      const blob = await api.attendanceCsv(current.session.id);
      if (destroyed) return;
      blobUrl = URL.createObjectURL(blob);
      csv.href = blobUrl;
      note.textContent = '';
      csv.click();
    } catch (err) {
      note.className = 'form-note error';
      note.textContent = err.status === 403 ? 'Only instructors can download attendance.' : `Download failed: ${err.message}`;
    }
  }

  return dialog;
}

/** The session's span on our clock: {start, end (now while live), span, live, pos(t) → percent}. */
function sessionTimeline(session) {
  const start = Date.parse(session.started_at);
  const live = !session.ended_at;
  const end = live ? Date.now() : Date.parse(session.ended_at);
  const span = Math.max(end - start, 1000);
  const pos = (t) => Math.min(100, Math.max(0, ((t - start) / span) * 100));
  return { start, end, span, live, pos };
}

function summaryText({ start, end, span, live }, all) {
  const attendees = all.filter((a) => a.intervals.length);
  const absent = all.length - attendees.length;
  const avg = attendees.length ? attendees.reduce((n, a) => n + (a.percent || 0), 0) / attendees.length : 0;
  return [
    dayFmt.format(start),
    `${timeFmt.format(start)}–${live ? 'now (live)' : timeFmt.format(end)}`,
    duration(span / 1000),
    `${attendees.length} attendee${attendees.length === 1 ? '' : 's'}`,
    absent ? `${absent} absent` : null,
    attendees.length ? `average ${Math.round(avg)}% present` : null,
  ].filter(Boolean).join(' · ');
}

/** The time axis and one row per attendee (earliest first), with a bar per stretch in the call. */
function attendanceChart(timeline, attendees) {
  const { start, end, live, pos } = timeline;
  const ticks = axisTicks(start, end);
  const tickFmt = end - start < 3 * 60 * 1000 ? timeSecFmt : timeFmt;
  const rows = attendees
    .map((a) => ({ ...a, first: a.intervals.length ? Math.min(...a.intervals.map((iv) => Date.parse(iv.joined_at))) : Infinity }))
    .sort((a, b) => a.first - b.first || (a.user.display_name || '').localeCompare(b.user.display_name || ''));
  const axis = h('div', { class: 'att-row att-axis', 'aria-hidden': 'true' },
    h('span', { class: 'att-name' }),
    h('div', { class: 'att-track' },
      h('span', { class: 'att-tick att-tick-start' }, tickFmt.format(start)),
      ticks.filter((t) => pos(t) > 20 && pos(t) < 80).map((t) => h('span', { class: 'att-tick', style: `left:${pos(t)}%` }, tickFmt.format(t))),
      h('span', { class: 'att-tick att-tick-end' }, live ? 'now' : tickFmt.format(end))),
    h('span', { class: 'att-total' }, 'Present'));
  const list = h('ol', { class: 'att-rows', 'aria-label': 'Attendees' }, rows.map((a) => attendeeRow(a, timeline, ticks)));
  return h('div', { class: 'att-chart' }, axis, list);
}

function attendeeRow(a, { end, pos }, ticks) {
  const name = a.user.display_name || a.user.username || 'Someone';
  const grid = ticks.map((t) => h('span', { class: 'att-gridline', style: `left:${pos(t)}%`, 'aria-hidden': 'true' }));
  const bars = a.intervals.map((iv) => {
    const joined = Date.parse(iv.joined_at);
    const open = !iv.left_at;
    const left = open ? end : Date.parse(iv.left_at);
    const from = pos(joined);
    const width = Math.max(pos(left) - from, 0.6);
    const label = `${timeSecFmt.format(joined)} – ${open ? 'still in the call' : timeSecFmt.format(left)} (${duration((left - joined) / 1000)})`;
    return h('span', { class: `att-bar${open ? ' open' : ''}`, testid: 'attendance-bar', style: `left:${from}%;width:${width}%`, title: label, role: 'img', 'aria-label': label });
  });
  const minutes = (a.total_s || 0) / 60;
  const pct = Math.round(a.percent || 0);
  const absent = !a.intervals.length; // a member who never joined: 0 min
  return h('li', { class: `att-row${absent ? ' absent' : ''}`, testid: 'attendance-row', dataset: { userId: a.user.id, absent: String(absent) } },
    h('span', { class: 'att-name' },
      h('span', { class: 'avatar avatar-sm', style: `--hue:${hueFor(a.user.id)}`, 'aria-hidden': 'true' }, initials(name)),
      h('span', { class: 'att-name-text', title: a.user.username ? `@${a.user.username}` : '' }, name)),
    h('div', { class: 'att-track' }, grid, bars),
    h('span', { class: 'att-total', testid: 'attendance-total' },
      h('strong', null, absent ? '0 min' : `${minutes < 10 ? minutes.toFixed(1) : Math.round(minutes)} min`),
      h('span', { class: `att-pct${pct >= 75 ? ' good' : pct < 40 ? ' low' : ''}` }, absent ? 'absent' : `${pct}%`)));
}

function sessionLabel(s) {
  const start = Date.parse(s.started_at);
  const when = Number.isNaN(start) ? 'Call' : `${dayFmt.format(start)}, ${timeFmt.format(start)}`;
  if (!s.ended_at) return `${when} · live now`;
  return `${when} · ${duration((Date.parse(s.ended_at) - start) / 1000)}`;
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** Round clock times for the axis: at most ~6 ticks, on whole minutes (seconds for short calls). */
function axisTicks(start, end) {
  const span = end - start;
  if (span < 3 * 60 * 1000) {
    const stepS = [10, 15, 30, 60].find((st) => span / (st * 1000) <= 6) || 60;
    const step = stepS * 1000;
    const out = [];
    for (let t = Math.ceil(start / step) * step; t <= end; t += step) out.push(t);
    return out.length ? out : [start];
  }
  const stepMin = TICK_STEPS_MIN.find((st) => span / (st * 60000) <= 6) || 480;
  const step = stepMin * 60000;
  const out = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) out.push(t);
  return out;
}

function safeName(name) {
  return String(name).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'room';
}
