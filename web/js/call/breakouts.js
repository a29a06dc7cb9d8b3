// Breakout rooms (docs/PROTOCOL-ADDITIONS.md "Breakout rooms"): an instructor splits the call into groups, each with
// a room and a call of its own. A student assigned to a group is moved there (`call.breakout_started`: its page
// opens the group's room and joins its call) and back when the breakout ends (`call.breakout_ended`: the main room
// and its call). Instructors see the groups, visit any of them, broadcast to all and end them.

import * as api from '../api.js';

export class CallBreakouts {
  /** `calls`: the CallManager (session.js); emits 'breakouts' when what an instructor sees changes. */
  constructor(calls) {
    this.calls = calls;
    this.current = null; // the open breakout {id, session, ends_at, groups: [{id, name, room, session, members}]}
    this.mainSession = null; // the main call we were moved out of: {id, room}
  }

  get app() {
    return this.calls.app;
  }

  /** call.breakout_started: students move to their group; instructors see the groups. */
  async onStarted(frame) {
    this.current = frame.breakout;
    this.mainSession = { id: frame.session, room: this.calls.session?.room || null };
    this.calls.emit('breakouts');
    const group = frame.group;
    if (!group) return;
    this.calls.notice({ text: `Breakout rooms: you are in ${group.name}. Moving you there…`, kind: 'info' });
    await this.moveTo({ id: group.session, room: group.room });
  }

  /** call.breakout_ended: back to the main call (if we were in a breakout, or were moved out of the main call). */
  async onEnded(frame) {
    const wasIn = this.current && this.calls.session && this.current.groups.some((g) => String(g.session) === String(this.calls.session.id));
    this.current = null;
    this.calls.emit('breakouts');
    if (!wasIn && this.calls.inCall) return; // instructors still in the main call stay there
    const main = frame.main || { id: frame.session, room: this.mainSession?.room };
    this.calls.notice({ text: 'The breakout rooms have ended: back to the main call.', kind: 'info' });
    await this.moveTo(main);
  }

  /** Leave the call we are in and join `session` ({id, room}) in its room. */
  async moveTo(session) {
    const calls = this.calls;
    if (calls.inCall && String(calls.session?.id) === String(session.id)) return;
    if (calls.inCall) await calls.leave();
    if (session.room) location.hash = `#/rooms/${session.room}`;
    try {
      await calls.join({ ...session, id: String(session.id), room: String(session.room) });
    } catch (err) {
      console.warn('joining the breakout call failed', err);
    }
  }

  // ---- instructors ----------------------------------------------------------------------------

  /** Start: `count` random groups or `groups` ([[user ids]]), `durationS` (or null). */
  async start({ count = null, groups = null, durationS = null }) {
    const body = groups ? { groups } : { count };
    if (durationS) body.duration_s = durationS;
    const data = await api.request('POST', `/api/sessions/${this.calls.session.id}/breakouts`, body);
    this.current = data.breakout;
    this.calls.emit('breakouts');
    return data.breakout;
  }

  async refresh() {
    if (!this.calls.session) return;
    try {
      this.current = (await api.request('GET', `/api/sessions/${this.calls.session.id}/breakouts`)).breakout;
    } catch (err) {
      console.warn('breakouts', err);
    }
    this.calls.emit('breakouts');
  }

  broadcast(text) {
    return api.request('POST', `/api/breakouts/${this.current.id}/broadcast`, { text });
  }

  async end() {
    await api.request('POST', `/api/breakouts/${this.current.id}/end`);
  }

  /** Visit a group: its room and its call (instructors are members of every group's room). */
  visit(group) {
    if (!this.mainSession && this.calls.session) this.mainSession = { id: this.calls.session.id, room: this.calls.session.room };
    return this.moveTo({ id: group.session, room: group.room });
  }

  /** Back to the main call (instructors visiting a group). */
  backToMain() {
    return this.mainSession ? this.moveTo(this.mainSession) : null;
  }
}
