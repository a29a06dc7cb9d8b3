// The camera / microphone / speaker selects of the device check and the in-call device menu.
//
// The speaker row is hidden where the browser cannot choose where sound plays (no setSinkId).

import { h } from '../dom.js';
import { listDevices, canChooseSpeaker } from '../call/device-prefs.js';

const ROWS = [
  { kind: 'videoinput', list: 'cameras', label: 'Camera', testid: 'select-camera' },
  { kind: 'audioinput', list: 'mics', label: 'Microphone', testid: 'select-microphone' },
  { kind: 'audiooutput', list: 'speakers', label: 'Speaker', testid: 'select-speaker' },
];

/**
 * Three labelled selects: {el, fill(current), value(kind), stop()}. fill() (re)reads the
 * devices (labels need a granted permission) and selects `current` ({videoinput, audioinput,
 * audiooutput} device ids); `onChange(kind, deviceId)` runs when the user picks one. A device
 * plugged in or out refills them with `current()`, until stop().
 */
export function createDeviceSelects({ idPrefix, onChange, current }) {
  const selects = new Map();
  const rows = ROWS.map((row) => {
    const id = `${idPrefix}-${row.testid}`;
    const select = h('select', { id, testid: row.testid, onchange: () => onChange(row.kind, select.value) });
    selects.set(row.kind, select);
    const el = h('div', { class: 'field device-field' }, h('label', { for: id }, row.label), select);
    if (row.kind === 'audiooutput' && !canChooseSpeaker()) el.hidden = true;
    return el;
  });
  const el = h('div', { class: 'device-selects' }, rows);

  async function fill(current) {
    let devices;
    try {
      devices = await listDevices();
    } catch (err) {
      console.warn('enumerateDevices', err);
      return;
    }
    for (const row of ROWS) {
      const select = selects.get(row.kind);
      const list = devices[row.list];
      const options = list.length ? list.map((d) => h('option', { value: d.id }, d.label)) : [h('option', { value: '' }, `No ${row.label.toLowerCase()} found`)];
      select.replaceChildren(...options);
      select.disabled = !list.length;
      const want = current[row.kind];
      if (want && list.some((d) => d.id === want)) select.value = want;
    }
  }

  const onDeviceChange = () => fill(current());
  navigator.mediaDevices?.addEventListener?.('devicechange', onDeviceChange);
  const stop = () => navigator.mediaDevices?.removeEventListener?.('devicechange', onDeviceChange);
  return { el, fill, value: (kind) => selects.get(kind).value, stop };
}
