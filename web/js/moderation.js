// A room's chat rules (docs/PROTOCOL-ADDITIONS.md "Moderation"): the chat locked (students read-only), slow mode
// (one message per N seconds per student) and bans. The server enforces them; this keeps each room's rules current
// from `room.moderation_changed`, lets the composer say what holds, and gives instructors the calls to change them.

import * as api from './api.js';

export const SLOW_MODE_CHOICES = [0, 10, 30, 60, 300];

export class ChatModeration {
  /** `app`: the App (rooms map, roles, socket, events: emits 'moderation' with the room id). */
  constructor(app) {
    this.app = app;
    this.nextSend = new Map(); // room id → when (ms) our next message may go, in slow mode
    this.off = app.socket.on('room.moderation_changed', (f) => this.onChanged(f));
  }

  /** {locked, slowS, archived} of a room as last known. */
  rules(roomId) {
    const room = this.app.rooms.get(roomId) || {};
    return { locked: !!room.chat_locked, slowS: room.slow_mode_s || 0, archived: !!room.archived_at };
  }

  exempt(roomId) {
    return this.app.isInstructor(roomId);
  }

  /** May we write in this room now (false: locked for students)? */
  mayWrite(roomId) {
    if (this.rules(roomId).archived) return false; // read-only for everyone
    return this.exempt(roomId) || !this.rules(roomId).locked;
  }

  /** Seconds until slow mode lets our next message go (0: now). */
  waitS(roomId) {
    if (this.exempt(roomId) || !this.rules(roomId).slowS) return 0;
    return Math.max(0, Math.ceil(((this.nextSend.get(roomId) || 0) - Date.now()) / 1000));
  }

  /** We sent a message: slow mode's clock starts. */
  sent(roomId) {
    const { slowS } = this.rules(roomId);
    if (slowS && !this.exempt(roomId)) this.nextSend.set(roomId, Date.now() + slowS * 1000);
  }

  onChanged(frame) {
    const room = this.app.rooms.get(frame.room);
    if (room) {
      room.chat_locked = !!frame.chat_locked;
      room.slow_mode_s = frame.slow_mode_s || 0;
    }
    if (!frame.slow_mode_s) this.nextSend.delete(frame.room);
    this.app.emit('moderation', frame.room);
  }

  /** PUT /api/rooms/{id}/moderation (instructors): {chat_locked?, slow_mode_s?}. */
  async set(roomId, fields) {
    const data = await api.request('PUT', `/api/rooms/${roomId}/moderation`, fields);
    this.onChanged({ room: roomId, ...data.moderation });
    return data.moderation;
  }

  /** Remove a member from the room (instructors). */
  remove(roomId, userId) {
    return api.request('DELETE', `/api/rooms/${roomId}/members/${userId}`);
  }

  /** Ban a user: removed and not added back until the ban is lifted (instructors). */
  ban(roomId, userId) {
    return api.request('POST', `/api/rooms/${roomId}/bans`, { user_id: userId });
  }

  destroy() {
    this.off?.();
  }
}

/** What the composer says about the rules, or '' when nothing holds for us. */
export function rulesNote(rules, { exempt, waitS }) {
  if (rules.archived) return exempt ? 'This room is archived: it is read-only. Unarchive it to send messages again.' : 'This room is archived: it is read-only.';
  if (rules.locked) return exempt ? 'The chat is locked: only instructors can send messages.' : 'The instructor locked the chat: only instructors can send messages now.';
  if (rules.slowS) {
    const every = rules.slowS >= 60 && rules.slowS % 60 === 0 ? `${rules.slowS / 60} min` : `${rules.slowS} s`;
    if (exempt) return `Slow mode: students can send one message every ${every}.`;
    return waitS ? `Slow mode: you can send again in ${waitS} s.` : `Slow mode: one message every ${every}.`;
  }
  return '';
}
