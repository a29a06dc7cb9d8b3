// An instructor's rules in a call (docs/PROTOCOL-ADDITIONS.md "Moderation"): lowering hands, and whether students
// may turn their cameras on and share their screens (the session's `students_video` / `students_screen`).
//
// The server enforces them; this keeps the page in step: a student whose camera or screen the instructor turned off
// stops sending it (and is told why), and the buttons say what is allowed.

import * as text from './notices.js';

export class CallPolicy {
  /** `calls`: the CallManager (session.js). */
  constructor(calls) {
    this.calls = calls;
  }

  /** What students may send now: {video, screen}. */
  rules() {
    const s = this.calls.session || {};
    return { video: s.students_video !== false, screen: s.students_screen !== false };
  }

  /** May we send `kind` ('video' or 'screen')? Instructors always may. */
  may(kind) {
    return this.calls.isInstructor || this.rules()[kind];
  }

  /** call.hand_lowered: an instructor lowered our hand. */
  onHandLowered(frame) {
    const calls = this.calls;
    calls.hand = false;
    if (calls.self) calls.self.hand = false;
    calls.notice({ text: text.handLoweredBy(calls.nameOfUser(frame.by)), kind: 'info' });
    calls.emit('local');
    calls.emit('participants');
  }

  /** call.permissions_changed: the session's rules; a student stops what is no longer allowed. */
  onPermissionsChanged(frame) {
    const calls = this.calls;
    const before = this.rules();
    calls.session = { ...calls.session, ...frame.session };
    const after = this.rules();
    if (!calls.isInstructor) {
      if (!after.video && calls.camera) calls.devices.setCamera(false);
      if (!after.screen && calls.local.screen) calls.devices.stopScreen();
      const changed = ['video', 'screen'].filter((k) => before[k] !== after[k]);
      if (changed.length) calls.notice({ text: text.permissionsChanged(calls.nameOfUser(frame.by), after, changed), kind: 'info' });
    }
    calls.emit('local');
    calls.emit('participants');
  }

  /** call.lower_hands: one participant's hand (`peerId`), or every raised hand (null). */
  async lowerHands(peerId = null) {
    const fields = { session: this.calls.session.id };
    if (peerId) fields.peer_id = peerId;
    return this.calls.socket.request('call.lower_hands', fields);
  }

  /** call.permissions {video?, screen?} (instructors). */
  async set(fields) {
    const ack = await this.calls.socket.request('call.permissions', { session: this.calls.session.id, ...fields });
    this.calls.session = { ...this.calls.session, ...ack.session };
    this.calls.emit('local');
    this.calls.emit('participants');
  }
}
