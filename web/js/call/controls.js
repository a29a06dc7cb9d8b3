// What views call for this tab's own part in a call (through `app.calls`, the CallManager):
// our microphone, camera and screen, with the call's checks (an instructor holding our
// microphone; cameras or screens turned off for students), our raised hand, and the call's
// recording.
//
// CallManager (session.js) extends this class and supplies what it uses: `devices` (devices.js),
// `policy` (policy.js), `sfu` (sfu.js), `callRecording` (recording.js), `socket`, `app`, `state`,
// `session`, `self`, `hand`, `media`, `inCall`, `notice()` and the events ('local',
// 'participants').

import { Emitter } from '../emitter.js';
import * as text from './notices.js';

export class CallControls extends Emitter {
  // ---- our media and hand (devices.js) ------------------------------------------------------

  get local() {
    return this.devices.local;
  }

  get preview() {
    return this.devices.preview;
  }

  get mic() {
    return this.devices.mic;
  }

  get camera() {
    return this.devices.camera;
  }

  mediaState() {
    return this.devices.state();
  }

  /** call.media: tell the others what we send now (`fields`: audio, video, screen). */
  sendMedia(fields) {
    if (this.state !== 'live') return;
    if (this.self) this.self.media = { ...this.self.media, ...fields };
    if (this.media === 'sfu' && 'screen' in fields) {
      // An SFU call shares the screen as a second published stream, beside the camera.
      if (fields.screen) this.sfu.startScreen();
      else this.sfu.stopScreen();
    }
    this.emit('participants');
    this.socket.request('call.media', { session: this.session.id, ...fields })
      .then((data) => { if (data.participant && this.self) this.self = { ...this.self, ...data.participant }; this.emit('participants'); })
      .catch((err) => console.warn('call.media', err.code));
  }

  setMic(on) {
    if (on && this.micHeld) return this.notice({ text: text.MIC_HELD, kind: 'info', muted: false });
    this.devices.setMic(on);
  }

  toggleMic() {
    this.setMic(!this.devices.mic);
  }

  setCamera(on) {
    if (on && this.inCall && !this.policy.may('video')) return this.notice({ text: text.CAMERAS_OFF, kind: 'info' });
    this.devices.setCamera(on);
  }

  toggleCamera() {
    this.setCamera(!this.devices.camera);
  }

  toggleScreen() {
    if (!this.local.screen && this.inCall && !this.policy.may('screen')) return this.notice({ text: text.SCREENS_OFF, kind: 'info' });
    return this.devices.toggleScreen();
  }

  stopScreen() {
    return this.devices.stopScreen();
  }

  async toggleHand() {
    if (this.state !== 'live') return;
    const raised = !this.hand;
    this.hand = raised;
    if (this.self) this.self.hand = raised;
    this.emit('local');
    this.emit('participants');
    try {
      const data = await this.socket.request('call.hand', { session: this.session.id, raised });
      if (data.participant && this.self) this.self = { ...this.self, ...data.participant };
    } catch (err) {
      this.hand = !raised;
      if (this.self) this.self.hand = !raised;
      this.notice({ text: text.handFailed(raised, err), kind: 'error' });
    }
    this.emit('local');
    this.emit('participants');
  }

  // ---- the call's recording (recording.js) --------------------------------------------------

  get recording() {
    return this.callRecording.current;
  }

  get recordingActive() {
    return this.callRecording.active;
  }

  toggleRecording() {
    return this.callRecording.toggle();
  }

  /** recording.mark {session, label} (instructors, while recording) → the mark. */
  addMark(label) {
    return this.callRecording.mark(label);
  }

  // ---- instructor controls ------------------------------------------------------------------

  get isInstructor() {
    return !!this.session && this.app.isInstructor(this.session.room);
  }

  /** True while an instructor holds our microphone muted (SFU calls): we cannot unmute. */
  get micHeld() {
    return !!this.self?.muted_by_instructor && this.self?.may_unmute === false;
  }
}
