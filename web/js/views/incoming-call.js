// The incoming call dialog (call/ringing.js): who calls, Accept, Decline and Silence; shown wherever we are in the app.

import { h, avatarFor } from '../dom.js';
import { icon } from '../icons.js';
import { checkDevices } from './device-check.js';

/** {el, destroy()}: a fixed dialog, hidden while nobody calls. */
export function createIncomingCall(app) {
  const calls = app.calls;
  const ringing = calls.ringing;
  const who = h('div', { class: 'incoming-who' });
  const silence = h('button', { type: 'button', class: 'btn btn-secondary btn-small', testid: 'silence-ring', onclick: () => ringing.silence() },
    icon('volume', { size: 16 }), 'Silence');
  const el = h('div', { class: 'incoming-call', role: 'alertdialog', 'aria-live': 'assertive', 'aria-label': 'Incoming call', testid: 'incoming-call', hidden: true },
    who,
    h('div', { class: 'incoming-actions' },
      h('button', { type: 'button', class: 'btn btn-primary', testid: 'accept-call', onclick: () => accept() }, icon('phone', { size: 16 }), 'Accept'),
      h('button', { type: 'button', class: 'btn btn-danger', testid: 'decline-call', onclick: () => ringing.decline() }, icon('phone-off', { size: 16 }), 'Decline'),
      silence));

  /** Accept, then the camera and microphone choice (the device check), then join. */
  async function accept() {
    const ring = await ringing.accept();
    if (!ring) return;
    try {
      if (!(await checkDevices(app, { action: 'Join call' }))) return; // closed the device check
      await ringing.join(ring);
    } catch (err) {
      console.warn('joining the call failed', err);
    } finally {
      calls.devices.discardPrepared(); // a device check's stream no call took
    }
  }

  function render() {
    const ring = ringing.incoming;
    el.hidden = !ring;
    if (!ring) return;
    const room = app.rooms.get(String(ring.room));
    const where = room && room.kind !== 'direct' ? ` · ${room.name}` : '';
    who.replaceChildren(avatarFor(ring.caller),
      h('div', {}, h('strong', { testid: 'incoming-caller' }, ring.caller?.display_name || 'Someone'), h('div', { class: 'muted' }, `is calling you${where}`)));
    silence.hidden = !ringing.ringingAudibly;
  }

  const offs = [calls.on('ringing', render), app.on('rooms', render)];
  render();
  return { el, destroy: () => { offs.forEach((off) => off()); ringing.stop(); } };
}
