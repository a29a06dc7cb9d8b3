// The in-call device menu (the control bar's Devices button): switch camera, microphone or
// speaker without leaving the call (LocalMedia.switchDevice replaces the track everywhere), and
// turn the device check before joining back on.

import { h } from '../dom.js';
import { openModal } from './modal.js';
import { createDeviceSelects } from './device-selects.js';
import { loadPrefs, savePrefs, deviceOf } from '../call/device-prefs.js';

export function openDeviceMenu(app) {
  const devices = app.calls.devices;
  const note = h('p', { class: 'form-note', role: 'status', testid: 'device-menu-note' });
  const current = () => ({
    videoinput: deviceOf(devices.local.camera), audioinput: deviceOf(devices.local.audio),
    audiooutput: loadPrefs().speaker || 'default',
  });
  const checkBox = h('input', { type: 'checkbox', id: 'device-menu-check', testid: 'device-menu-check', checked: loadPrefs().check,
    onchange: () => savePrefs({ check: checkBox.checked }) });
  const check = h('label', { for: 'device-menu-check', class: 'device-flag' }, checkBox, 'Check my devices before joining a call');
  const done = h('button', { type: 'button', class: 'btn btn-primary', testid: 'device-menu-done', onclick: () => close() }, 'Done');
  const selects = createDeviceSelects({
    idPrefix: 'device-menu',
    current,
    onChange: async (kind, id) => {
      note.textContent = 'Switching…';
      const ok = await devices.switchDevice(kind, id);
      note.textContent = ok ? '' : 'That device could not be opened; the call keeps the one it had.';
      selects.fill(current());
    },
  });
  const { close } = openModal({
    testid: 'device-menu-dialog', className: 'device-menu-modal', titleId: 'device-menu-title', title: 'Devices',
    subtitle: 'The others see and hear the new device at once.', closeTestid: 'device-menu-close',
    body: [h('div', { class: 'device-menu-body' }, selects.el, check), h('footer', { class: 'modal-foot' }, note, done)],
    onClose: () => { off(); selects.stop(); },
  });
  const off = app.calls.on('state', (state) => { if (state === 'idle') close(); }); // left the call
  selects.fill(current());
  return { close };
}
