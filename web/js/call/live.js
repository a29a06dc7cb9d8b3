// Which rooms have a live call: call.started / call.ended events and GET /api/rooms/{id}/sessions.

import * as api from '../api.js';

export class LiveSessions {
  /** `onChange(room)`: a room's live session appeared, changed or ended. */
  constructor(onChange) {
    this.onChange = onChange;
    this.live = new Map(); // room id → live session (ended_at null)
    this.events = new Map(); // room id → count of call.started/ended seen (see refresh)
  }

  get(roomId) {
    return this.live.get(String(roomId)) || null;
  }

  /** A session as an event (or an answer) describes it: live, or ended (`ended_at`). */
  set(session, { fromEvent = true } = {}) {
    if (!session?.room) return;
    const room = String(session.room);
    if (fromEvent) this.events.set(room, (this.events.get(room) || 0) + 1);
    if (session.ended_at) this.live.delete(room);
    else this.live.set(room, { ...this.live.get(room), ...session });
    this.onChange(room);
  }

  /** GET /api/rooms/{id}/sessions: is a call live there (ended_at null)? */
  async refresh(roomId) {
    const room = String(roomId);
    const seen = this.events.get(room) || 0;
    try {
      const { sessions = [] } = await api.roomSessions(roomId, 5);
      // A call.started/ended that arrived meanwhile is newer than this answer.
      if ((this.events.get(room) || 0) !== seen) return sessions;
      const live = sessions.find((s) => !s.ended_at);
      if (live) this.set({ ...live, room: live.room || room }, { fromEvent: false });
      else if (this.live.delete(room)) this.onChange(room);
      return sessions;
    } catch (err) {
      if (err.status !== 403 && err.status !== 404) console.warn(`room ${roomId}: cannot list calls`, err);
      return [];
    }
  }
}
