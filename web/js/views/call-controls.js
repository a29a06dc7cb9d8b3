// The call's control bar: microphone, camera, devices, screen, hand, Record, Mark, People, Leave and End for all.
//
// Toggles carry `data-state` on|off (tests read it); Record, Mark and End are instructors' only.
// The microphone is disabled (`data-held` true) while an instructor holds it muted (SFU calls).

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { endFailed } from '../call/notices.js';
import { confirmAction } from './confirm.js';
import { openDeviceMenu } from './device-menu.js';

/** A call button with an icon and a label, set by setControl: {el, iconSlot, label}. */
export function controlButton(testid, onclick) {
  const iconSlot = h('span', { class: 'call-btn-icon' });
  const label = h('span', { class: 'call-btn-label' });
  const el = h('button', { type: 'button', class: 'call-btn', testid, onclick }, iconSlot, label);
  return { el, iconSlot, label };
}

export function setControl(btn, { icon: name, label, on = false, danger = false, active = false, disabled = false, title = null }) {
  btn.iconSlot.replaceChildren(icon(name, { size: 20 }));
  btn.label.textContent = label;
  btn.el.setAttribute('aria-label', label);
  btn.el.dataset.state = on ? 'on' : 'off';
  btn.el.classList.toggle('is-off', danger);
  btn.el.classList.toggle('is-active', active);
  btn.el.disabled = disabled;
  if (title) btn.el.title = title;
}

/** The control bar: {el, render()}. `mark` is the Mark button and form (call-mark.js). */
export function createControls(app, mark) {
  const calls = app.calls;
  const micBtn = controlButton('toggle-mic', () => calls.toggleMic());
  const camBtn = controlButton('toggle-camera', () => calls.toggleCamera());
  const devicesBtn = controlButton('device-menu', () => openDeviceMenu(app));
  setControl(devicesBtn, { icon: 'sliders', label: 'Devices', title: 'Switch camera, microphone or speaker' });
  devicesBtn.el.classList.add('call-btn-devices');
  const screenBtn = controlButton('share-screen', () => calls.toggleScreen());
  const handBtn = controlButton('raise-hand', () => calls.toggleHand());
  const recordBtn = controlButton('record-call', async () => {
    // Stopping a recording in progress asks first (a pending one is simply withdrawn).
    if (calls.recording?.status === 'recording'
        && !await confirmAction({ title: 'Stop recording?', text: 'The recording ends here; you can start a new one later.', confirmLabel: 'Stop recording' })) return;
    calls.toggleRecording();
  });
  const peopleBtn = controlButton('call-people', () => app.emit('people-toggle'));
  peopleBtn.el.classList.add('only-medium-call');
  setControl(peopleBtn, { icon: 'group', label: 'People' });
  const leaveBtn = h('button', { type: 'button', class: 'call-btn call-leave', testid: 'leave-call', onclick: () => calls.leave() },
    icon('phone-off', { size: 20 }), h('span', { class: 'call-btn-label' }, 'Leave'));
  const endBtn = h('button', { type: 'button', class: 'call-btn call-end', testid: 'end-call', onclick: () => onEnd() },
    icon('phone-off', { size: 20 }), h('span', { class: 'call-btn-label' }, 'End for all'));

  const el = h('div', { class: 'call-controls', role: 'toolbar', 'aria-label': 'Call controls' },
    h('div', { class: 'call-controls-group' }, micBtn.el, camBtn.el, devicesBtn.el, screenBtn.el, handBtn.el),
    h('div', { class: 'call-controls-group' }, recordBtn.el, mark.button.el, peopleBtn.el),
    h('div', { class: 'call-controls-group' }, leaveBtn, endBtn));

  function render() {
    const live = calls.state === 'live';
    renderDevices();
    devicesBtn.el.disabled = !calls.inCall || !navigator.mediaDevices?.getUserMedia;
    const sharing = !!calls.local.screen;
    const mayShare = sharing || calls.policy.may('screen'); // the instructor may turn students' sharing off
    setControl(screenBtn, {
      icon: 'screen', label: sharing ? 'Stop sharing' : 'Share screen', on: sharing, active: sharing, disabled: !live || !mayShare,
      title: sharing ? 'Stop sharing your screen' : mayShare ? 'Share your screen, a window or a tab' : 'The instructor turned screen sharing off for students',
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
    mark.render({ live, instructor });
    endBtn.hidden = !instructor;
    endBtn.disabled = !live;
  }

  function renderDevices() {
    const hasMic = !!calls.local.audio;
    const hasCam = !!calls.local.camera;
    const held = calls.micHeld; // an SFU call's instructor mute: no unmuting until allowed
    setControl(micBtn, {
      icon: calls.mic && hasMic ? 'mic' : 'mic-off', label: calls.mic && hasMic ? 'Mute' : 'Unmute',
      on: calls.mic && hasMic, danger: !(calls.mic && hasMic), disabled: !hasMic || held,
      title: held ? 'The instructor muted you' : hasMic ? (calls.mic ? 'Mute your microphone' : 'Unmute your microphone') : 'No microphone',
    });
    micBtn.el.dataset.held = String(held);
    const camOn = calls.camera && hasCam;
    const mayCam = camOn || !calls.inCall || calls.policy.may('video'); // the instructor may turn students' cameras off
    setControl(camBtn, {
      icon: camOn ? 'video' : 'video-off', label: camOn ? 'Stop video' : 'Start video',
      on: camOn, danger: !camOn, disabled: !hasCam || !mayCam,
      title: !hasCam ? 'No camera' : camOn ? 'Turn your camera off' : mayCam ? 'Turn your camera on' : 'The instructor turned cameras off for students',
    });
  }

  async function onEnd() {
    const ok = await confirmAction({ title: 'End the call for everyone?', text: 'Everyone leaves the call, and a recording in progress stops.', confirmLabel: 'End for all' });
    if (!ok) return;
    endBtn.disabled = true;
    try {
      await calls.end();
    } catch (err) {
      calls.notice({ text: endFailed(err), kind: 'error' });
      endBtn.disabled = false;
    }
  }

  return { el, render };
}
