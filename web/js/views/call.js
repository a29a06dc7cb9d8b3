// The call area above the chat (notices, the "Live call in progress — Join" banner, the stage slot) and the chat header's Start call / Attendance.
//
// The stage itself is in call-stage.js, the participant list in call-participants.js.

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { startFailed } from '../call/notices.js';
import { openAttendance } from './attendance.js';
import { openRecordingsPanel } from './recordings-panel.js';
import { createStage } from './call-stage.js';
import { checkDevices } from './device-check.js';

// ---- chat header: Start call, Attendance ---------------------------------------------------

export function createCallHeaderActions(app, roomId) {
  const calls = app.calls;
  const start = h('button', {
    type: 'button', class: 'btn btn-primary btn-small', testid: 'start-call', hidden: true,
    onclick: () => onStart(),
  }, icon('video', { size: 16 }), 'Start call');
  const attendance = h('button', {
    type: 'button', class: 'btn btn-secondary btn-small', testid: 'open-attendance', hidden: true,
    title: 'Who attended this room’s calls, and when', onclick: () => openAttendance(app, roomId),
  }, icon('timeline', { size: 16 }), 'Attendance');
  // Instructors may open the call with a waiting room (remembered per browser).
  const lobbyBox = h('input', { type: 'checkbox', testid: 'start-with-waiting-room', checked: localStorage.getItem('podium.lobby') === '1',
    onchange: () => localStorage.setItem('podium.lobby', lobbyBox.checked ? '1' : '0') });
  const lobbyLabel = h('label', { class: 'start-lobby', title: 'Students wait until you let them in', hidden: true }, lobbyBox, 'Waiting room');
  const el = h('div', { class: 'call-header-actions' }, start, lobbyLabel, attendance);

  // An archived room is read-only: no calls (the server refuses with room_archived too).
  const canStart = () => !app.rooms.get(roomId)?.archived_at && (app.isInstructor(roomId) || app.rooms.get(roomId)?.kind === 'group');

  function render() {
    const live = calls.liveSession(roomId);
    const inThisCall = calls.inCall && String(calls.session?.room) === String(roomId);
    start.hidden = !canStart() || !!live || inThisCall;
    lobbyLabel.hidden = start.hidden || !app.isInstructor(roomId);
    attendance.hidden = !app.isInstructor(roomId);
  }

  async function onStart() {
    start.disabled = true;
    try {
      if (!(await checkDevices(app, { action: 'Start call' }))) return; // closed the device check
      await calls.start(roomId, { lobby: app.isInstructor(roomId) && lobbyBox.checked });
    } catch (err) {
      console.warn('call.start failed', err);
      if (!calls.noticeValue) calls.notice({ text: startFailed(err), kind: 'error' });
    } finally {
      calls.devices.discardPrepared(); // a device check's stream no call took
      start.disabled = false;
      render();
    }
  }

  const offs = [calls.on('live', render), calls.on('state', render), app.on('rooms', render)];
  render();
  return { el, destroy: () => offs.forEach((off) => off()) };
}

// ---- "Call" on a person ---------------------------------------------------------------------

/** Call `user` (a member wire's user): open our direct room with them (made if new), then — after the camera and
 *  microphone choice — start its call, which rings them (call/ringing.js), or join the one already live there. */
export async function callPerson(app, user) {
  const room = await app.createRoom({ kind: 'direct', name: '', usernames: [user.username] }); // a new one is named by the server
  location.hash = `#/rooms/${room.id}`;
  const calls = app.calls;
  if (calls.inCall && String(calls.session?.room) === String(room.id)) return room;
  try {
    if (!(await checkDevices(app, { action: 'Call' }))) return room; // closed the device check
    const live = calls.liveSession(room.id);
    if (live) await calls.join(live);
    else await calls.start(room.id);
  } catch (err) {
    console.warn('calling failed', err);
    if (!calls.noticeValue) calls.notice({ text: startFailed(err), kind: 'error' });
  } finally {
    calls.devices.discardPrepared(); // a device check's stream no call took
  }
  return room;
}

// ---- call area: notice, join banner, stage -------------------------------------------------

export function createCallArea(app) {
  const calls = app.calls;
  const notice = createNotice(app);
  const banner = createJoinBanner(app);
  const stageSlot = h('div', { class: 'stage-slot' });
  const el = h('div', { class: 'call-area' }, notice.el, banner.el, stageSlot);
  let stage = null;

  function render() {
    if (calls.inCall && !stage) {
      stage = createStage(app);
      stageSlot.replaceChildren(stage.el);
      stage.layout();
    } else if (!calls.inCall && stage) {
      stage.destroy();
      stage = null;
      stageSlot.replaceChildren();
    }
    el.classList.toggle('has-stage', !!stage);
    app.emit('call-layout', !!stage);
  }

  const offs = [calls.on('state', render)];
  render();
  return {
    el,
    destroy() {
      offs.forEach((off) => off());
      stage?.destroy();
      notice.destroy();
      banner.destroy();
    },
  };
}

function createNotice(app) {
  const calls = app.calls;
  const iconSlot = h('span', { class: 'call-notice-icon', 'aria-hidden': 'true' });
  const text = h('span', { class: 'call-notice-text', testid: 'call-notice-text' });
  const actions = h('span', { class: 'call-notice-actions' });
  const close = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Dismiss', onclick: () => calls.notice(null) }, icon('close', { size: 16 }));
  const el = h('div', { class: 'call-notice', testid: 'call-notice', role: 'status', 'aria-live': 'polite', hidden: true },
    iconSlot, text, actions, close);
  let timer = null;

  function show(n) {
    clearTimeout(timer);
    el.hidden = !n;
    if (!n) return;
    el.dataset.kind = n.kind || 'info';
    el.dataset.topic = n.topic || 'call';
    const infoIcon = n.muted ? 'mic-off' : n.topic === 'recording' ? 'record' : 'phone';
    iconSlot.replaceChildren(icon(n.kind === 'info' ? infoIcon : 'warning', { size: 17 }));
    text.textContent = n.text;
    const buttons = [];
    if (n.muted && calls.inCall) {
      buttons.push(h('button', { type: 'button', class: 'link-btn', onclick: () => { calls.setMic(true); calls.notice(null); } }, 'Unmute'));
    }
    if (n.ended && n.room && app.isInstructor(n.room)) {
      buttons.push(h('button', { type: 'button', class: 'link-btn', testid: 'notice-attendance', onclick: () => openAttendance(app, n.room, n.session) }, 'View attendance'));
    }
    if (n.recordings) {
      buttons.push(h('button', { type: 'button', class: 'link-btn', testid: 'notice-recordings', onclick: () => openRecordingsPanel(app, n.recordings) }, 'Open recordings'));
    }
    actions.replaceChildren(...buttons);
    if (n.kind === 'info' && !n.removed) timer = setTimeout(() => { if (calls.noticeValue === n) calls.notice(null); }, 12000);
  }

  const off = calls.on('notice', show);
  show(calls.noticeValue);
  return { el, destroy: () => { off(); clearTimeout(timer); } };
}

function createJoinBanner(app) {
  const calls = app.calls;
  const detail = h('span', { class: 'call-banner-detail' });
  const join = h('button', { type: 'button', class: 'btn btn-primary btn-small', testid: 'join-call', onclick: () => onJoin() },
    icon('phone', { size: 15 }), 'Join');
  const el = h('div', { class: 'call-banner', testid: 'call-banner', role: 'status', hidden: true },
    h('span', { class: 'live-dot', 'aria-hidden': 'true' }),
    h('span', { class: 'call-banner-text' }, h('strong', null, 'Live call in progress'), detail),
    join);

  function liveHere() {
    const roomId = app.activeRoomId;
    return roomId ? calls.liveSession(roomId) : null;
  }

  function render() {
    const live = liveHere();
    const inIt = live && calls.inCall && String(calls.session?.id) === String(live.id);
    el.hidden = !live || inIt;
    if (!live) return;
    const parts = [];
    const starter = app.store.room(live.room).displayName(String(live.started_by));
    if (starter) parts.push(`started by ${starter}`);
    const started = new Date(live.started_at);
    if (!Number.isNaN(started.getTime())) parts.push(`at ${started.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`);
    if (live.participants) parts.push(`· ${live.participants} in the call`);
    detail.textContent = parts.length ? ` — ${parts.join(' ')}` : '';
    join.disabled = calls.state === 'joining';
  }

  async function onJoin() {
    const live = liveHere();
    if (!live) return;
    join.disabled = true;
    try {
      if (!(await checkDevices(app))) return; // closed the device check
      await calls.join(live);
    } catch (err) {
      console.warn('call.join failed', err);
      if (err.code === 'conflict' || err.code === 'not_found') calls.refreshLive(live.room);
    } finally {
      calls.devices.discardPrepared(); // a device check's stream no call took
      render();
    }
  }

  const offs = [calls.on('live', render), calls.on('state', render), app.on('active', render), app.on('rooms', render)];
  render();
  return { el, destroy: () => offs.forEach((off) => off()) };
}
