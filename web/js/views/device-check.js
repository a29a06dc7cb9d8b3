// The device check before joining or starting a call: camera preview, microphone level,
// camera / microphone / speaker choice, "join with microphone off / camera off".
//
// The choices are remembered (device-prefs.js); the stream opened here goes to the call
// (LocalMedia.adopt), so the browser does not open the devices twice. Unticking "Check my
// devices before joining" skips the dialog next time (the remembered choices still apply).

import { h } from '../dom.js';
import { openModal } from './modal.js';
import { createDeviceSelects } from './device-selects.js';
import { openDevices } from '../call/devices.js';
import { loadPrefs, savePrefs, constraintsFor, canChooseSpeaker, deviceOf } from '../call/device-prefs.js';
import { meterLevel } from '../call/level-meter.js';
import { missingDevices } from '../call/notices.js';

/**
 * Show the device check (unless turned off or the browser has no getUserMedia). Resolves true
 * when the user chose Join (`action` is its label) — the stream is then adopted by
 * app.calls.devices — and false when they closed the dialog.
 */
export function checkDevices(app, { action = 'Join' } = {}) {
  const md = navigator.mediaDevices;
  if (!loadPrefs().check || !md?.getUserMedia) return Promise.resolve(true);
  return new Promise((resolve) => openCheck(app, md, action, resolve));
}

function checkbox(id, testid, checked, label, onchange = null) {
  const box = h('input', { type: 'checkbox', id, testid, checked, onchange });
  return { box, el: h('label', { for: id, class: 'device-flag' }, box, label) };
}

function openCheck(app, md, action, resolve) {
  const prefs = loadPrefs();
  let stream = null;
  let missing = [];
  let stopMeter = () => {};
  let joined = false;
  let closed = false;

  const video = h('video', { testid: 'device-preview', autoplay: true, playsinline: '', muted: true });
  video.muted = true;
  const previewNote = h('span', { class: 'device-preview-note' }, 'Opening your camera…');
  const preview = h('div', { class: 'device-preview' }, video, previewNote);
  const meter = h('meter', { id: 'device-check-level', testid: 'mic-level', min: 0, max: 1, low: 0.25, high: 0.85, optimum: 0.5, value: 0 });
  const micOff = checkbox('device-check-mic-off', 'join-mic-off', prefs.micOff, 'Join with my microphone off');
  const camOff = checkbox('device-check-camera-off', 'join-camera-off', prefs.cameraOff, 'Join with my camera off', () => renderPreview());
  const always = checkbox('device-check-always', 'device-check-always', true, 'Check my devices before joining');
  const chosen = () => ({ videoinput: deviceOf(track('video')), audioinput: deviceOf(track('audio')), audiooutput: selects.value('audiooutput') || prefs.speaker || 'default' });
  const selects = createDeviceSelects({ idPrefix: 'device-check', onChange: (kind, id) => switchTo(kind, id), current: chosen });
  const note = h('p', { class: 'form-note', role: 'status', testid: 'device-check-note' });
  const join = h('button', { type: 'button', class: 'btn btn-primary', testid: 'device-check-join', disabled: true, onclick: () => onJoin() }, action);
  const cancel = h('button', { type: 'button', class: 'btn btn-secondary', testid: 'device-check-cancel', onclick: () => close() }, 'Cancel');

  const body = h('div', { class: 'device-check-body' },
    preview,
    h('div', { class: 'device-check-side' },
      selects.el,
      h('div', { class: 'field' }, h('label', { for: 'device-check-level' }, 'Microphone level'), meter),
      h('div', { class: 'device-flags' }, micOff.el, camOff.el, always.el)));
  const { close } = openModal({
    testid: 'device-check', className: 'device-check-modal', titleId: 'device-check-title', title: 'Check your camera and microphone',
    subtitle: 'Pick the devices for this call; you can switch them during the call too.', closeTestid: 'device-check-close',
    body: [body, h('footer', { class: 'modal-foot' }, note, cancel, join)],
    onClose: () => {
      closed = true;
      selects.stop();
      stopMeter();
      video.srcObject = null;
      if (!joined) stream?.getTracks().forEach((t) => t.stop());
      resolve(joined);
    },
  });

  function track(kind) {
    return (kind === 'audio' ? stream?.getAudioTracks() : stream?.getVideoTracks())?.[0] || null;
  }

  function renderPreview() {
    const cam = track('video');
    const off = camOff.box.checked;
    preview.classList.toggle('is-off', !cam || off);
    previewNote.textContent = !cam ? 'No camera' : off ? 'You join with your camera off' : '';
    if (cam && video.srcObject?.getVideoTracks()[0] !== cam) {
      video.srcObject = new MediaStream([cam]);
      video.play().catch(() => {}); // muted: allowed
    }
  }

  function startMeter() {
    stopMeter();
    meter.value = 0;
    stopMeter = meterLevel(track('audio'), (level) => { meter.value = level; });
  }

  async function open() {
    const opened = await openDevices(md, prefs);
    if (closed) {
      opened.stream?.getTracks().forEach((t) => t.stop());
      return;
    }
    stream = opened.stream || new MediaStream();
    missing = opened.missing;
    note.textContent = missing.length ? missingDevices(missing) : '';
    renderPreview();
    startMeter();
    await selects.fill(chosen());
    join.disabled = false;
  }

  /** Another camera or microphone picked: reopen that one device. */
  async function switchTo(kind, id) {
    if (kind === 'audiooutput') return; // remembered on Join; nothing plays yet
    const media = kind === 'audioinput' ? 'audio' : 'video';
    let fresh;
    try {
      fresh = (await md.getUserMedia({ [media]: constraintsFor(media, id) })).getTracks()[0];
    } catch (err) {
      note.textContent = `Could not open that ${media === 'audio' ? 'microphone' : 'camera'}: ${err.message || err.name}`;
      return;
    }
    if (closed) return fresh.stop();
    const old = track(media);
    if (old) {
      stream.removeTrack(old);
      old.stop();
    }
    stream.addTrack(fresh);
    missing = missing.filter((m) => m !== (media === 'audio' ? 'microphone' : 'camera'));
    note.textContent = missing.length ? missingDevices(missing) : '';
    if (media === 'audio') startMeter();
    else renderPreview();
  }

  function onJoin() {
    const choice = { micOff: micOff.box.checked, cameraOff: camOff.box.checked, check: always.box.checked };
    if (track('video')) choice.camera = deviceOf(track('video'));
    if (track('audio')) choice.mic = deviceOf(track('audio'));
    if (canChooseSpeaker()) choice.speaker = selects.value('audiooutput');
    savePrefs(choice);
    app.calls.devices.adopt(stream, missing);
    joined = true;
    close();
  }

  open().catch((err) => {
    console.warn('device check', err);
    note.textContent = `Could not open your devices: ${err.message || err.name}`;
    join.disabled = false;
  });
}
