// The call stage shown while in a call: header (title, timer, recording badge, status), video tiles, Mark form, controls.
//
// Built by the call area (call.js) when the call starts and destroyed when it ends. Ctrl/⌘+D
// toggles the microphone and Ctrl/⌘+E the camera while it is shown.

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { createTileGrid } from './call-tiles.js';
import { createControls } from './call-controls.js';
import { createMarkForm, createMarkToast } from './call-mark.js';

/** The stage: {el, layout(), destroy()}. */
export function createStage(app) {
  const calls = app.calls;
  const head = createStageHead(app, () => toggleExpand());
  const toast = createMarkToast();
  const tiles = createTileGrid(app, toast.el);
  const mark = createMarkForm(calls);
  const controls = createControls(app, mark);
  const el = h('section', { class: 'call-stage', testid: 'call-stage', 'aria-label': 'Live call' }, head.el, tiles.el, mark.form, controls.el);

  function toggleExpand() {
    const region = el.closest('.chat-region');
    const on = !region?.classList.contains('call-expanded');
    region?.classList.toggle('call-expanded', on);
    head.renderExpand(on);
    requestAnimationFrame(tiles.layout);
  }

  const onKey = (ev) => {
    // Keyboard shortcuts as in most call apps: Ctrl/⌘+D toggles the microphone, Ctrl/⌘+E the camera.
    if (!(ev.ctrlKey || ev.metaKey) || ev.altKey || ev.shiftKey) return;
    const key = ev.key.toLowerCase();
    if (key === 'd') { ev.preventDefault(); calls.toggleMic(); }
    if (key === 'e') { ev.preventDefault(); calls.toggleCamera(); }
  };
  document.addEventListener('keydown', onKey);

  const offs = [
    calls.on('participants', () => { tiles.sync(); controls.render(); }),
    calls.on('local', () => { tiles.sync(); controls.render(); }),
    calls.on('stream', (peerId) => tiles.update(peerId)),
    calls.on('peer-state', (peerId) => tiles.update(peerId)),
    calls.on('sfu-streams', () => tiles.sync()),
    calls.on('talking', () => tiles.talking()),
    calls.on('state', () => { head.render(); controls.render(); tiles.sync(); }),
    calls.on('recording', () => { head.render(); controls.render(); }),
    calls.on('marked', toast.show),
    app.on('rooms', head.render),
  ];
  head.render();
  head.renderTimer();
  controls.render();
  tiles.sync();

  return {
    el,
    layout: tiles.layout,
    destroy() {
      offs.forEach((off) => off());
      head.destroy();
      toast.destroy();
      tiles.destroy();
      document.removeEventListener('keydown', onKey);
      el.closest('.chat-region')?.classList.remove('call-expanded');
    },
  };
}

/** Title, time since the call started, recording badge, joining/rejoining status, and the expand button. */
function createStageHead(app, onToggleExpand) {
  const calls = app.calls;
  const title = h('h2', { class: 'stage-title' });
  const timer = h('span', { class: 'stage-timer', title: 'Time since the call started' });
  const status = h('span', { class: 'stage-status', role: 'status', 'aria-live': 'polite' });
  const recText = h('span', { class: 'rec-text' });
  const rec = h('span', { class: 'rec-chip', testid: 'recording-badge', role: 'status', hidden: true }, h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), recText);
  const expand = h('button', { type: 'button', class: 'stage-icon-btn', 'aria-pressed': 'false', onclick: onToggleExpand });
  // Which way the media goes: through the media router, or peer-to-peer (no Janus configured or reachable).
  const path = h('span', { class: 'media-path-chip', testid: 'media-path', hidden: true });
  const el = h('header', { class: 'stage-head' },
    h('span', { class: 'live-dot', 'aria-hidden': 'true' }), title, timer, rec, path, status,
    h('span', { class: 'topbar-spacer' }), expand);

  function render() {
    const roomId = calls.session?.room;
    title.textContent = roomId ? (app.roomTitle(roomId) || 'Live call') : 'Live call';
    const st = calls.state;
    status.textContent = st === 'joining' ? 'Joining…' : st === 'reconnecting' ? 'Connection lost — rejoining…' : '';
    status.dataset.state = st;
    path.hidden = !calls.media;
    path.dataset.path = calls.media || '';
    path.textContent = calls.media === 'mesh' ? 'Peer-to-peer call' : calls.media === 'sfu' ? 'Via media server' : '';
    path.title = calls.media === 'mesh'
      ? 'No media server is available: everyone sends their camera to everyone else, which suits up to 6–8 cameras'
      : 'Everyone sends their camera once, to the media server';
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

  function renderExpand(on) {
    expand.setAttribute('aria-pressed', String(on));
    expand.setAttribute('aria-label', on ? 'Show the chat' : 'Hide the chat');
    expand.title = on ? 'Show the chat' : 'Hide the chat (bigger video)';
    expand.replaceChildren(icon(on ? 'shrink' : 'expand', { size: 17 }));
  }
  renderExpand(false);

  return { el, render, renderTimer, renderExpand, destroy: () => clearInterval(clock) };
}
