// A call's waiting room (docs/PROTOCOL-ADDITIONS.md "Waiting room"): with the session's lobby on, a student's
// call.join answers `waiting: true`; the page waits (state 'waiting', its own preview on the stage) until an
// instructor admits it (`call.admitted`: it joins) or denies it (`call.denied`). Instructors see the queue
// (`call.lobby_changed` → `call.lobby`) and admit one, admit all or deny.

import * as text from './notices.js';

export class CallLobby {
  /** `calls`: the CallManager (session.js); emits 'lobby' when the queue an instructor sees changes. */
  constructor(calls) {
    this.calls = calls;
    this.queue = []; // [{user: {id, display_name}, since}] as an instructor last read it
  }

  /** The join ack said we wait. */
  wait(ack) {
    const calls = this.calls;
    calls.session = ack.session || calls.session;
    calls.setState('waiting');
    calls.notice({ text: text.WAITING, kind: 'info' });
  }

  /** call.admitted: join for real. */
  onAdmitted() {
    return this.knock();
  }

  /** call.join again while waiting: in if admitted, else queued again (a new socket). */
  async knock() {
    const calls = this.calls;
    if (calls.state !== 'waiting') return;
    calls.notice(null);
    try {
      const ack = await calls.socket.request('call.join', { session: calls.session.id, media: calls.mediaState() });
      if (ack.waiting) return this.wait(ack);
      calls.applyJoin(ack);
    } catch (err) {
      calls.teardown();
      calls.notice({ text: text.joinError(err), kind: 'error' });
    }
  }

  /** call.denied: we are not let in. */
  onDenied(frame) {
    const calls = this.calls;
    if (calls.state !== 'waiting') return;
    const by = calls.nameOfUser(frame.by);
    calls.teardown();
    calls.notice({ text: text.deniedBy(by), kind: 'error' });
  }

  // ---- instructors ----------------------------------------------------------------------------

  /** call.lobby_changed: read the queue again. */
  async refresh() {
    const calls = this.calls;
    if (calls.state !== 'live' || !calls.isInstructor) return;
    try {
      this.queue = (await calls.socket.request('call.lobby', { session: calls.session.id })).waiting || [];
    } catch (err) {
      console.warn('call.lobby', err.code);
    }
    calls.emit('lobby');
  }

  async admit(userId) {
    await this.calls.socket.request('call.admit', { session: this.calls.session.id, user_id: userId });
    await this.refresh();
  }

  async admitAll() {
    await this.calls.socket.request('call.admit', { session: this.calls.session.id, all: true });
    await this.refresh();
  }

  async deny(userId) {
    await this.calls.socket.request('call.deny', { session: this.calls.session.id, user_id: userId });
    await this.refresh();
  }

  get on() {
    return this.calls.session?.lobby === true;
  }

  /** Turn the waiting room on or off (off lets everyone waiting in). */
  async set(on) {
    await this.calls.policy.set({ lobby: on });
    await this.refresh();
  }

  reset() {
    this.queue = [];
  }
}
