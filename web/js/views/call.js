// Live-call views: the call area above the chat (notices, the "Live call in progress — Join"
// banner, the call stage with video tiles and controls), the participant list at the top of
// the people panel, and the Start call / Attendance buttons in the chat header. While the call
// is recorded everyone sees a badge; instructors have Record/Stop and Mark.

import { h, initials, hueFor } from '../dom.js';
import { icon } from '../icons.js';
import { formatDuration } from '../recordings.js';
import { openAttendance } from './attendance.js';
import { openRecordingsPanel } from './recordings-panel.js';

const TILE_GAP = 10;
const TILE_RATIO = 16 / 9;

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
  const el = h('div', { class: 'call-header-actions' }, start, attendance);

  const canStart = () => app.isInstructor(roomId) || app.rooms.get(roomId)?.kind === 'group';

  function render() {
    const live = calls.liveSession(roomId);
    const inThisCall = calls.inCall && String(calls.session?.room) === String(roomId);
    start.hidden = !canStart() || !!live || inThisCall;
    attendance.hidden = !app.isInstructor(roomId);
  }

  async function onStart() {
    start.disabled = true;
    try {
      await calls.start(roomId);
    } catch (err) {
      console.warn('call.start failed', err);
      if (!calls.noticeValue) calls.notice({ text: `Could not start the call: ${err.message}`, kind: 'error' });
    } finally {
      start.disabled = false;
      render();
    }
  }

  const offs = [calls.on('live', render), calls.on('state', render), app.on('rooms', render)];
  render();
  return { el, destroy: () => offs.forEach((off) => off()) };
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
      await calls.join(live);
    } catch (err) {
      console.warn('call.join failed', err);
      if (err.code === 'conflict' || err.code === 'not_found') calls.refreshLive(live.room);
    } finally {
      render();
    }
  }

  const offs = [calls.on('live', render), calls.on('state', render), app.on('active', render), app.on('rooms', render)];
  render();
  return { el, destroy: () => offs.forEach((off) => off()) };
}

// ---- stage ----------------------------------------------------------------------------------

function createStage(app) {
  const calls = app.calls;
  const tiles = new Map(); // peer_id → tile ('local' for ours)

  const title = h('h2', { class: 'stage-title' });
  const timer = h('span', { class: 'stage-timer', title: 'Time since the call started' });
  const status = h('span', { class: 'stage-status', role: 'status', 'aria-live': 'polite' });
  const recText = h('span', { class: 'rec-text' });
  const rec = h('span', { class: 'rec-chip', testid: 'recording-badge', role: 'status', hidden: true }, h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), recText);
  const expand = h('button', { type: 'button', class: 'stage-icon-btn', 'aria-pressed': 'false', onclick: () => toggleExpand() });
  const head = h('header', { class: 'stage-head' },
    h('span', { class: 'live-dot', 'aria-hidden': 'true' }), title, timer, rec, status,
    h('span', { class: 'topbar-spacer' }), expand);

  const grid = h('div', { class: 'tile-grid', role: 'list', 'aria-label': 'Video' });
  const toast = h('div', { class: 'stage-toast', testid: 'mark-toast', role: 'status', 'aria-live': 'polite', hidden: true });
  const gridWrap = h('div', { class: 'tile-area' }, grid, toast);

  const micBtn = controlButton('toggle-mic', () => calls.toggleMic());
  const camBtn = controlButton('toggle-camera', () => calls.toggleCamera());
  const screenBtn = controlButton('share-screen', () => calls.toggleScreen());
  const handBtn = controlButton('raise-hand', () => calls.toggleHand());
  const recordBtn = controlButton('record-call', () => calls.toggleRecording());
  const markBtn = controlButton('mark-recording', () => openMarkForm());
  markBtn.el.setAttribute('aria-controls', 'mark-form');
  markBtn.el.setAttribute('aria-expanded', 'false');
  const peopleBtn = controlButton('call-people', () => app.emit('people-toggle'));
  peopleBtn.el.classList.add('only-medium-call');
  setControl(peopleBtn, { icon: 'group', label: 'People' });
  const leaveBtn = h('button', { type: 'button', class: 'call-btn call-leave', testid: 'leave-call', onclick: () => calls.leave() },
    icon('phone-off', { size: 20 }), h('span', { class: 'call-btn-label' }, 'Leave'));
  const endBtn = h('button', { type: 'button', class: 'call-btn call-end', testid: 'end-call', onclick: () => onEnd() },
    icon('phone-off', { size: 20 }), h('span', { class: 'call-btn-label' }, 'End for all'));

  const controls = h('div', { class: 'call-controls', role: 'toolbar', 'aria-label': 'Call controls' },
    h('div', { class: 'call-controls-group' }, micBtn.el, camBtn.el, screenBtn.el, handBtn.el),
    h('div', { class: 'call-controls-group' }, recordBtn.el, markBtn.el, peopleBtn.el),
    h('div', { class: 'call-controls-group' }, leaveBtn, endBtn));

  // Mark: a label for this moment of the recording (chapters in the class video).
  const markInput = h('input', {
    id: 'mark-label-input', testid: 'mark-label-input', maxlength: '200', autocomplete: 'off', required: true,
    placeholder: 'e.g. Newton’s second law',
  });
  const markError = h('span', { class: 'mark-error', testid: 'mark-error', role: 'alert' });
  const markSave = h('button', { type: 'submit', class: 'btn btn-primary btn-small', testid: 'mark-save' }, 'Add mark');
  const markForm = h('form', { id: 'mark-form', class: 'mark-form', testid: 'mark-form', hidden: true, 'aria-label': 'Mark this moment' },
    h('label', { for: 'mark-label-input' }, 'Mark this moment'), markInput, markSave,
    h('button', { type: 'button', class: 'btn btn-ghost btn-small', testid: 'mark-cancel', onclick: () => closeMarkForm() }, 'Cancel'),
    markError);
  markForm.addEventListener('submit', (ev) => { ev.preventDefault(); saveMark(); });
  markForm.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { ev.preventDefault(); closeMarkForm(); } });

  const el = h('section', { class: 'call-stage', testid: 'call-stage', 'aria-label': 'Live call' }, head, gridWrap, markForm, controls);

  // ---- tiles ------------------------------------------------------------------------------
  function syncTiles() {
    const wanted = new Map();
    if (calls.self || calls.state !== 'idle') wanted.set('local', null);
    for (const p of calls.participants.values()) if (!p.recorder) wanted.set(p.peer_id, p);
    for (const [id, tile] of tiles) {
      if (!wanted.has(id)) {
        tile.destroy();
        tiles.delete(id);
      }
    }
    for (const id of wanted.keys()) {
      if (!tiles.has(id)) {
        const tile = createTile(id === 'local');
        tiles.set(id, tile);
        grid.append(tile.el);
      }
    }
    for (const [id, tile] of tiles) updateTile(id, tile);
    // Someone presenting goes first, then raised hands; the rest keep their order.
    const ordered = [...tiles.entries()].sort(([a, ta], [b, tb]) => tileRank(b, tb) - tileRank(a, ta));
    ordered.forEach(([, tile], i) => { tile.el.style.order = String(i); });
    grid.dataset.count = String(tiles.size);
    layout();
  }

  function tileRank(id, tile) {
    return (tile.participant?.media?.screen ? 4 : 0) + (id === 'local' ? 0 : 1);
  }

  function updateTile(id, tile) {
    if (id === 'local') {
      const p = calls.self || { user: app.me, media: calls.mediaState(), hand: calls.hand };
      tile.update({ participant: { ...p, media: calls.mediaState(), hand: calls.hand }, stream: calls.preview, local: true, connection: 'connected' });
      return;
    }
    tile.update({ participant: calls.participants.get(id), stream: calls.streamOf(id), local: false, connection: calls.peerState(id) });
  }

  // Largest 16:9 tiles that fit: try every column count, keep the biggest tile. While one
  // person presents, their tile takes the stage and the others line up beside it.
  function layout() {
    const n = Math.max(1, tiles.size);
    const W = gridWrap.clientWidth - 2 * TILE_GAP;
    const H = gridWrap.clientHeight - 2 * TILE_GAP;
    if (W <= 0 || H <= 0) return;
    const presenters = [...tiles.values()].filter((t) => t.participant?.media?.screen);
    const spotlight = presenters.length === 1 && n > 1 && W > 480;
    grid.classList.toggle('spotlight', spotlight);
    for (const t of tiles.values()) t.el.classList.toggle('spotlit', spotlight && t === presenters[0]);
    const sides = [...tiles.values()].filter((t) => t !== presenters[0]).sort((x, y) => Number(x.el.style.order) - Number(y.el.style.order));
    sides.forEach((t, i) => {
      t.el.style.gridRow = spotlight ? String(i + 2) : '';
      t.el.style.gridColumn = spotlight ? '2' : '';
    });
    if (spotlight) {
      const others = sides.length;
      const sideW = Math.min(260, Math.max(140, W * 0.22));
      let mainW = W - sideW - TILE_GAP;
      const mainH = Math.min(H, mainW / TILE_RATIO);
      mainW = Math.min(mainW, mainH * TILE_RATIO);
      const sideH = Math.max(24, Math.min(sideW / TILE_RATIO, (mainH - TILE_GAP * (others + 1)) / others));
      grid.style.setProperty('--main-w', `${Math.floor(mainW)}px`);
      grid.style.setProperty('--main-h', `${Math.floor(mainH)}px`);
      grid.style.setProperty('--side-w', `${Math.floor(sideW)}px`);
      grid.style.setProperty('--side-h', `${Math.floor(sideH)}px`);
      grid.style.setProperty('--rows', String(others));
      return;
    }
    let best = { cols: 1, w: 0, hgt: 0 };
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      let w = (W - TILE_GAP * (cols - 1)) / cols;
      let hgt = (H - TILE_GAP * (rows - 1)) / rows;
      if (w / hgt > TILE_RATIO) w = hgt * TILE_RATIO;
      else hgt = w / TILE_RATIO;
      if (w > best.w) best = { cols, w, hgt };
    }
    grid.style.setProperty('--cols', String(best.cols));
    grid.style.setProperty('--tile-w', `${Math.floor(best.w)}px`);
    grid.style.setProperty('--tile-h', `${Math.floor(best.hgt)}px`);
  }
  const resize = new ResizeObserver(() => layout());
  resize.observe(gridWrap);

  // ---- header & controls --------------------------------------------------------------------
  function renderHead() {
    const roomId = calls.session?.room;
    title.textContent = roomId ? (app.roomTitle(roomId) || 'Live call') : 'Live call';
    const st = calls.state;
    status.textContent = st === 'joining' ? 'Joining…' : st === 'reconnecting' ? 'Connection lost — rejoining…' : '';
    status.dataset.state = st;
    const recStatus = calls.recordingActive ? calls.recording.status : null;
    rec.hidden = !recStatus;
    rec.dataset.status = recStatus || '';
    rec.classList.toggle('pending', recStatus === 'pending');
    recText.textContent = recStatus === 'pending' ? 'Starting recording…' : recStatus ? 'Recording' : '';
    rec.title = recStatus === 'recording' ? 'This call is being recorded' : recStatus ? 'Waiting for the recorder to join' : '';
  }

  function renderTimer() {
    const started = Date.parse(calls.session?.started_at || '');
    if (Number.isNaN(started)) {
      timer.textContent = '';
      return;
    }
    const s = Math.max(0, Math.floor((Date.now() - started) / 1000));
    const hh = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(hh ? 2 : 1, '0');
    const ss = String(s % 60).padStart(2, '0');
    timer.textContent = hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
  }
  const clock = setInterval(renderTimer, 1000);

  function renderControls() {
    const live = calls.state === 'live';
    const hasMic = !!calls.local.audio;
    const hasCam = !!calls.local.camera;
    setControl(micBtn, {
      icon: calls.mic && hasMic ? 'mic' : 'mic-off', label: calls.mic && hasMic ? 'Mute' : 'Unmute',
      on: calls.mic && hasMic, danger: !(calls.mic && hasMic), disabled: !hasMic,
      title: hasMic ? (calls.mic ? 'Mute your microphone' : 'Unmute your microphone') : 'No microphone',
    });
    setControl(camBtn, {
      icon: calls.camera && hasCam ? 'video' : 'video-off', label: calls.camera && hasCam ? 'Stop video' : 'Start video',
      on: calls.camera && hasCam, danger: !(calls.camera && hasCam), disabled: !hasCam,
      title: hasCam ? (calls.camera ? 'Turn your camera off' : 'Turn your camera on') : 'No camera',
    });
    const sharing = !!calls.local.screen;
    setControl(screenBtn, {
      icon: 'screen', label: sharing ? 'Stop sharing' : 'Share screen', on: sharing, active: sharing, disabled: !live,
      title: sharing ? 'Stop sharing your screen' : 'Share your screen, a window or a tab',
    });
    setControl(handBtn, {
      icon: 'hand', label: calls.hand ? 'Lower hand' : 'Raise hand', on: calls.hand, active: calls.hand, disabled: !live,
      title: calls.hand ? 'Lower your hand' : 'Raise your hand to ask a question',
    });
    const instructor = calls.isInstructor;
    const recording = calls.recordingActive;
    setControl(recordBtn, {
      icon: 'record', label: recording ? 'Stop recording' : 'Record', on: recording, active: recording, disabled: !live,
      title: recording ? 'Stop recording this call' : 'Record this call (everyone sees that it is recorded)',
    });
    recordBtn.el.hidden = !instructor;
    const canMark = live && calls.recording?.status === 'recording';
    setControl(markBtn, {
      icon: 'bookmark', label: 'Mark', disabled: !canMark, active: !markForm.hidden,
      title: canMark ? 'Mark this moment of the recording (a chapter in the class video)' : 'Marks can be added while recording',
    });
    markBtn.el.hidden = !instructor;
    if (!canMark || !instructor) closeMarkForm();
    endBtn.hidden = !instructor;
    endBtn.disabled = !live;
  }

  function openMarkForm() {
    if (!markForm.hidden) {
      markInput.focus();
      return;
    }
    markError.textContent = '';
    markInput.value = '';
    markForm.hidden = false;
    markBtn.el.classList.add('is-active');
    markBtn.el.setAttribute('aria-expanded', 'true');
    markInput.focus();
  }

  function closeMarkForm() {
    if (markForm.hidden) return;
    markForm.hidden = true;
    markBtn.el.classList.remove('is-active');
    markBtn.el.setAttribute('aria-expanded', 'false');
  }

  async function saveMark() {
    const label = markInput.value.trim();
    if (!label) {
      markError.textContent = 'Type a label for this moment.';
      markInput.focus();
      return;
    }
    markSave.disabled = true;
    markError.textContent = '';
    try {
      await calls.addMark(label);
      closeMarkForm();
    } catch (err) {
      markError.textContent = err.code === 'conflict' ? 'Marks can be added only while recording.' : `Could not add the mark: ${err.message}`;
    } finally {
      markSave.disabled = false;
    }
  }

  let toastTimer = null;
  function showMark({ mark }) {
    const by = mark.by?.display_name;
    const at = typeof mark.offset_s === 'number' ? ` at ${formatDuration(mark.offset_s)}` : '';
    toast.replaceChildren(icon('bookmark', { size: 15 }), h('span', null, `${by ? `${by} marked` : 'Marked'}${at}: `, h('strong', null, mark.label)));
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, 5000);
  }

  async function onEnd() {
    endBtn.disabled = true;
    try {
      await calls.end();
    } catch (err) {
      calls.notice({ text: `Could not end the call: ${err.message}`, kind: 'error' });
      endBtn.disabled = false;
    }
  }

  function toggleExpand() {
    const region = el.closest('.chat-region');
    const on = !region?.classList.contains('call-expanded');
    region?.classList.toggle('call-expanded', on);
    renderExpand(on);
    requestAnimationFrame(layout);
  }

  function renderExpand(on) {
    expand.setAttribute('aria-pressed', String(on));
    expand.setAttribute('aria-label', on ? 'Show the chat' : 'Hide the chat');
    expand.title = on ? 'Show the chat' : 'Hide the chat (bigger video)';
    expand.replaceChildren(icon(on ? 'shrink' : 'expand', { size: 17 }));
  }
  renderExpand(false);

  const onKey = (ev) => {
    // Keyboard shortcuts as in most call apps: Ctrl/⌘+D toggles the microphone, Ctrl/⌘+E the camera.
    if (!(ev.ctrlKey || ev.metaKey) || ev.altKey || ev.shiftKey) return;
    const key = ev.key.toLowerCase();
    if (key === 'd') { ev.preventDefault(); calls.toggleMic(); }
    if (key === 'e') { ev.preventDefault(); calls.toggleCamera(); }
  };
  document.addEventListener('keydown', onKey);

  const offs = [
    calls.on('participants', () => { syncTiles(); renderControls(); }),
    calls.on('local', () => { syncTiles(); renderControls(); }),
    calls.on('stream', (peerId) => { const t = tiles.get(peerId); if (t) updateTile(peerId, t); }),
    calls.on('peer-state', (peerId) => { const t = tiles.get(peerId); if (t) updateTile(peerId, t); }),
    calls.on('state', () => { renderHead(); renderControls(); syncTiles(); }),
    calls.on('recording', () => { renderHead(); renderControls(); }),
    calls.on('marked', showMark),
    app.on('rooms', renderHead),
  ];
  renderHead();
  renderTimer();
  renderControls();
  syncTiles();

  return {
    el,
    layout,
    destroy() {
      offs.forEach((off) => off());
      clearInterval(clock);
      clearTimeout(toastTimer);
      resize.disconnect();
      document.removeEventListener('keydown', onKey);
      for (const tile of tiles.values()) tile.destroy();
      el.closest('.chat-region')?.classList.remove('call-expanded');
    },
  };
}

function controlButton(testid, onclick) {
  const iconSlot = h('span', { class: 'call-btn-icon' });
  const label = h('span', { class: 'call-btn-label' });
  const el = h('button', { type: 'button', class: 'call-btn', testid, onclick }, iconSlot, label);
  return { el, iconSlot, label };
}

function setControl(btn, { icon: name, label, on = false, danger = false, active = false, disabled = false, title = null }) {
  btn.iconSlot.replaceChildren(icon(name, { size: 20 }));
  btn.label.textContent = label;
  btn.el.setAttribute('aria-label', label);
  btn.el.dataset.state = on ? 'on' : 'off';
  btn.el.classList.toggle('is-off', danger);
  btn.el.classList.toggle('is-active', active);
  btn.el.disabled = disabled;
  if (title) btn.el.title = title;
}

// ---- one video tile ---------------------------------------------------------------------------

function createTile(local) {
  const video = h('video', { testid: local ? 'local-video' : 'remote-video', autoplay: true, playsinline: '', muted: local });
  video.muted = local; // the property, not only the attribute: never play our own microphone back
  const avatar = h('span', { class: 'avatar tile-avatar-circle', 'aria-hidden': 'true' });
  const avatarWrap = h('div', { class: 'tile-avatar' }, avatar);
  const name = h('span', { class: 'tile-name' });
  const mic = h('span', { class: 'tile-icon tile-mic', testid: 'mic-indicator', title: 'Microphone off' }, icon('mic-off', { size: 14, label: 'Microphone off' }));
  const cam = h('span', { class: 'tile-icon', testid: 'camera-indicator', title: 'Camera off' }, icon('video-off', { size: 14, label: 'Camera off' }));
  const screen = h('span', { class: 'tile-chip tile-screen', testid: 'screen-indicator' }, icon('screen', { size: 14 }), 'Presenting');
  const hand = h('span', { class: 'tile-chip tile-hand', testid: 'hand-indicator', role: 'img', 'aria-label': 'Hand raised' }, icon('hand', { size: 15 }), 'Hand raised');
  const conn = h('span', { class: 'tile-conn' });
  const sound = h('button', { type: 'button', class: 'tile-sound', hidden: true, onclick: () => unblock() }, icon('volume', { size: 15 }), 'Click to hear');
  const el = h('div', { class: `video-tile${local ? ' local' : ''}`, testid: 'video-tile', role: 'listitem' },
    video, avatarWrap,
    h('div', { class: 'tile-top' }, hand, screen),
    h('div', { class: 'tile-bottom' }, mic, cam, name),
    conn, sound);
  let bound = null;
  const tile = { el, participant: null };

  function play() {
    const p = video.play();
    if (!p) return;
    p.catch((err) => {
      if (err.name === 'NotAllowedError' && !video.muted) {
        // Autoplay with sound was refused: play muted and offer a button to hear.
        video.muted = true;
        sound.hidden = false;
        video.play().catch(() => {});
      }
    });
  }

  function unblock() {
    video.muted = false;
    sound.hidden = true;
    play();
  }

  tile.update = ({ participant, stream, connection }) => {
    tile.participant = participant;
    const user = participant?.user || {};
    const display = user.display_name || 'Guest';
    if (participant?.peer_id && !local) el.dataset.peerId = participant.peer_id;
    if (local && participant?.peer_id) el.dataset.peerId = participant.peer_id;
    el.dataset.userId = user.id || '';
    name.textContent = local ? `${display} (you)` : display;
    avatar.textContent = initials(display);
    avatar.style.setProperty('--hue', String(hueFor(user.id || display)));
    const media = participant?.media || {};
    const hasVideo = !!stream && stream.getVideoTracks().some((t) => t.readyState === 'live');
    const showVideo = hasVideo && (media.video || media.screen);
    el.classList.toggle('cam-off', !showVideo);
    el.classList.toggle('presenting', !!media.screen);
    el.classList.toggle('hand-up', !!participant?.hand);
    el.dataset.audio = media.audio ? 'on' : 'off';
    el.dataset.video = media.video ? 'on' : 'off';
    el.dataset.screen = media.screen ? 'on' : 'off';
    el.dataset.hand = participant?.hand ? 'up' : 'down';
    mic.hidden = !!media.audio;
    mic.dataset.muted = String(!media.audio);
    cam.hidden = !!media.video || !!media.screen;
    screen.hidden = !media.screen;
    hand.hidden = !participant?.hand;
    el.setAttribute('aria-label', `${display}${media.audio ? '' : ', muted'}${participant?.hand ? ', hand raised' : ''}`);
    if (!local) {
      const waiting = connection === 'new' || connection === 'connecting';
      const broken = connection === 'disconnected' || connection === 'failed';
      conn.textContent = waiting ? 'Connecting…' : broken ? 'Reconnecting…' : '';
      conn.hidden = !waiting && !broken;
      el.dataset.connection = connection || 'new';
    } else {
      conn.hidden = true;
    }
    if (bound !== stream) {
      bound = stream;
      video.srcObject = stream || null;
      if (stream) play();
    }
  };

  tile.destroy = () => {
    video.srcObject = null;
    el.remove();
  };
  return tile;
}

// ---- participant list (top of the people panel) ------------------------------------------------

export function createCallPanel(app) {
  const calls = app.calls;
  const heading = h('h2', { class: 'panel-title' });
  const hands = h('p', { class: 'call-hands', hidden: true });
  const list = h('ul', { class: 'people-list call-people-list' });
  const el = h('section', { class: 'call-people', testid: 'participant-list', 'aria-label': 'In the call', hidden: true },
    heading, hands, list);
  const confirming = new Set(); // peer ids whose Remove asks for confirmation

  function everyone() {
    const out = [];
    if (calls.self) out.push({ ...calls.self, media: calls.mediaState(), hand: calls.hand, me: true });
    for (const p of calls.participants.values()) out.push(p);
    const rank = (p) => (p.hand ? 0 : 2) + (p.me ? 0 : 1) + (p.recorder ? 4 : 0);
    return out.sort((a, b) => rank(a) - rank(b) || (a.user?.display_name || '').localeCompare(b.user?.display_name || ''));
  }

  function row(p, instructor) {
    const user = p.user || {};
    const display = user.display_name || 'Guest';
    const sub = [p.me ? 'you' : null, user.role === 'instructor' ? 'Instructor' : null, p.recorder ? 'Recorder' : null,
      p.media?.screen ? 'Presenting' : null].filter(Boolean).join(' · ');
    const indicators = h('span', { class: 'call-person-icons' },
      p.hand ? h('span', { class: 'ind ind-hand', testid: 'hand-indicator', title: 'Hand raised' }, icon('hand', { size: 15, label: 'Hand raised' })) : null,
      !p.recorder && !p.media?.audio ? h('span', { class: 'ind ind-off', testid: 'mic-indicator', title: 'Microphone off' }, icon('mic-off', { size: 15, label: 'Microphone off' })) : null,
      !p.recorder && !p.media?.video ? h('span', { class: 'ind ind-off', testid: 'camera-indicator', title: 'Camera off' }, icon('video-off', { size: 15, label: 'Camera off' })) : null,
      p.media?.screen ? h('span', { class: 'ind ind-screen', testid: 'screen-indicator', title: 'Sharing the screen' }, icon('screen', { size: 15, label: 'Sharing the screen' })) : null);
    let actions = null;
    if (instructor && !p.me) {
      if (confirming.has(p.peer_id)) {
        actions = h('span', { class: 'call-person-actions confirming' },
          h('span', { class: 'confirm-text' }, 'Remove?'),
          h('button', { type: 'button', class: 'act act-danger', testid: 'confirm-remove', onclick: () => act(p, 'remove') }, 'Remove'),
          h('button', { type: 'button', class: 'act', onclick: () => { confirming.delete(p.peer_id); render(); } }, 'Cancel'));
      } else if (!p.recorder) {
        actions = h('span', { class: 'call-person-actions' },
          h('button', {
            type: 'button', class: 'act', testid: 'mute-participant', disabled: !p.media?.audio,
            title: p.media?.audio ? `Mute ${display}` : `${display} is muted`, onclick: () => act(p, 'mute'),
          }, icon('mic-off', { size: 14 }), 'Mute'),
          h('button', {
            type: 'button', class: 'act act-danger', testid: 'remove-participant', title: `Remove ${display} from the call`,
            onclick: () => { confirming.add(p.peer_id); render(); },
          }, icon('user-x', { size: 14 }), 'Remove'));
      }
    }
    return h('li', { class: `person call-person${p.hand ? ' hand-up' : ''}`, testid: 'participant', dataset: { peerId: p.peer_id, userId: user.id || '' } },
      h('span', { class: 'avatar avatar-sm', style: `--hue:${hueFor(user.id || display)}`, 'aria-hidden': 'true' }, initials(display)),
      h('span', { class: 'person-text' }, h('span', { class: 'person-name' }, display), h('span', { class: 'person-sub' }, sub)),
      indicators,
      actions);
  }

  async function act(p, what) {
    confirming.delete(p.peer_id);
    try {
      if (what === 'mute') await calls.muteParticipant(p.peer_id);
      else await calls.removeParticipant(p.peer_id);
    } catch (err) {
      calls.notice({ text: `Could not ${what} ${p.user?.display_name || 'them'}: ${err.message}`, kind: 'error' });
    }
    render();
  }

  function render() {
    el.hidden = !calls.inCall;
    if (!calls.inCall) {
      list.replaceChildren();
      confirming.clear();
      return;
    }
    const people = everyone();
    for (const id of [...confirming]) if (!calls.participants.has(id)) confirming.delete(id);
    heading.textContent = `In the call — ${people.filter((p) => !p.recorder).length}`;
    const raised = people.filter((p) => p.hand).length;
    hands.hidden = !raised;
    hands.replaceChildren(icon('hand', { size: 15 }), ` ${raised} raised hand${raised === 1 ? '' : 's'}`);
    const instructor = calls.isInstructor;
    list.replaceChildren(...people.map((p) => row(p, instructor)));
  }

  const offs = [calls.on('participants', render), calls.on('state', render), calls.on('local', render), app.on('rooms', render)];
  render();
  return { el, destroy: () => offs.forEach((off) => off()) };
}
