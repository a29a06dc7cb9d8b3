// Client-side state per room: messages by seq, the history window, members, online, reads, typing.
//
// Client-side state per room: messages keyed by seq (deduplicated by id), the loaded history
// window, and room metadata learnt from room.join and live events (members, online users,
// read positions, typing users).
//
// Events: 'messages' {room, messages} whenever messages are added or changed;
//         'meta' {room, part} with part in members | online | reads | typing | window
//         (window: the loaded history range or its sync state changed).

import { Emitter } from './emitter.js';

const TYPING_EXPIRY_MS = 6000; // a lost "active:false" must not leave someone typing forever

export class RoomData {
  constructor(id) {
    this.id = id;
    this.messages = new Map(); // seq → message
    this.seqById = new Map(); // message id → seq
    this.loaded = false; // true once a history window was opened (see openWindow)
    this.oldestSeq = null; // lowest seq of the window
    this.hasOlder = false;
    this.syncedSeq = 0; // every message in [oldestSeq, syncedSeq] is here
    this.lastSeq = 0; // highest seq the server told us about
    this.lastChange = null; // the room's change counter as of our copy (room.changes)
    this.joined = false;
    this.myRole = null;
    this.members = new Map(); // user id → {user, role}
    this.online = new Set();
    this.status = new Map(); // user id → online | away | busy
    this.reads = new Map(); // user id → seq
    this.typing = new Map(); // user id → expiry timer
  }

  sorted() {
    return [...this.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  latest() {
    let best = null;
    for (const m of this.messages.values()) if (!best || m.seq > best.seq) best = m;
    return best;
  }

  byId(id) {
    const seq = this.seqById.get(id);
    return seq === undefined ? null : this.messages.get(seq);
  }

  displayName(userId) {
    return this.members.get(userId)?.user?.display_name || null;
  }
}

export class Store extends Emitter {
  constructor() {
    super();
    this.rooms = new Map();
  }

  room(id) {
    if (!this.rooms.has(id)) this.rooms.set(id, new RoomData(id));
    return this.rooms.get(id);
  }

  clear() {
    for (const r of this.rooms.values()) for (const t of r.typing.values()) clearTimeout(t);
    this.rooms.clear();
  }

  /**
   * Start the history window of a room at `sinceSeq` (exclusive): messages after it are
   * expected to arrive through room.sync. Later live messages are kept from now on.
   */
  openWindow(roomId, sinceSeq) {
    const r = this.room(roomId);
    r.loaded = true;
    r.oldestSeq = sinceSeq + 1;
    r.syncedSeq = Math.max(r.syncedSeq, sinceSeq);
    r.hasOlder = sinceSeq > 0;
    this.emit('meta', { room: roomId, part: 'window' });
  }

  /**
   * Add or replace messages (dedupe by id; the newer edit wins). Messages of rooms whose
   * window is not open only advance lastSeq. Returns true when a live message left a gap
   * after syncedSeq, i.e. the caller should page room.sync.
   */
  upsertMessages(roomId, messages, { fromSync = false } = {}) {
    const r = this.room(roomId);
    const changed = [];
    for (const m of messages) {
      if (!m || typeof m.seq !== 'number') continue;
      r.lastSeq = Math.max(r.lastSeq, m.seq);
      if (!r.loaded) continue;
      const existing = r.messages.get(m.seq);
      if (existing && !isNewer(m, existing)) continue;
      r.messages.set(m.seq, m);
      r.seqById.set(m.id, m.seq);
      if (r.oldestSeq === null || m.seq < r.oldestSeq) r.oldestSeq = m.seq;
      changed.push(m);
    }
    while (r.messages.has(r.syncedSeq + 1)) r.syncedSeq += 1;
    if (changed.length) this.emit('messages', { room: roomId, messages: changed });
    return !fromSync && r.loaded && r.lastSeq > r.syncedSeq;
  }

  /** Record the end of a room.sync run: everything up to `lastSeq` has been delivered. */
  markSynced(roomId, lastSeq) {
    const r = this.room(roomId);
    r.lastSeq = Math.max(r.lastSeq, lastSeq);
    r.syncedSeq = Math.max(r.syncedSeq, lastSeq);
    this.emit('meta', { room: roomId, part: 'window' });
  }

  /** Older messages from scroll-back; `exhausted` when nothing older remains. */
  prependOlder(roomId, messages, exhausted) {
    const r = this.room(roomId);
    this.upsertMessages(roomId, messages, { fromSync: true });
    if (messages.length) r.oldestSeq = Math.min(r.oldestSeq ?? Infinity, ...messages.map((m) => m.seq));
    r.hasOlder = !exhausted && (r.oldestSeq ?? 1) > 1;
    this.emit('meta', { room: roomId, part: 'window' });
  }

  setReactions(roomId, messageId, reactions) {
    const r = this.room(roomId);
    const m = r.byId(messageId);
    if (!m) return;
    const updated = { ...m, reactions: reactions || {} };
    r.messages.set(m.seq, updated);
    this.emit('messages', { room: roomId, messages: [updated] });
  }

  /** Apply a room.join ack: {room, last_seq, members, online, reads?, my_role?}. */
  applyJoin(roomId, ack, me) {
    const r = this.room(roomId);
    r.joined = true;
    r.lastSeq = Math.max(r.lastSeq, ack.last_seq || 0);
    if (ack.my_role) r.myRole = ack.my_role;
    if (Array.isArray(ack.members)) this.setMembers(roomId, ack.members, me);
    if (Array.isArray(ack.online)) {
      r.online = new Set(ack.online.map(String));
      this.emit('meta', { room: roomId, part: 'online' });
    }
    if (ack.reads && typeof ack.reads === 'object') {
      for (const [uid, seq] of Object.entries(ack.reads)) r.reads.set(uid, Math.max(r.reads.get(uid) || 0, seq || 0));
      this.emit('meta', { room: roomId, part: 'reads' });
    }
  }

  /** Members as users (room.join) or as {user, role, joined_at} (GET /api/rooms/{id}). */
  setMembers(roomId, members, me) {
    const r = this.room(roomId);
    const next = new Map();
    for (const item of members) {
      const user = item.user || item;
      const previous = r.members.get(user.id);
      const role = item.user ? item.role : item.room_role || item.role_in_room || previous?.role || null;
      next.set(user.id, { user, role });
    }
    r.members = next;
    if (me && next.get(me.id)?.role && !r.myRole) r.myRole = next.get(me.id).role;
    this.emit('meta', { room: roomId, part: 'members' });
  }

  /** A person's new name or avatar (`user.updated`): every room where they are a member. */
  updateUser(user) {
    for (const r of this.rooms.values()) {
      const member = r.members.get(user.id);
      if (!member) continue;
      member.user = { ...member.user, ...user };
      this.emit('meta', { room: r.id, part: 'members' });
    }
  }

  setOnline(roomId, userId, online) {
    const r = this.room(roomId);
    if (online) r.online.add(userId);
    else r.online.delete(userId);
    this.emit('meta', { room: roomId, part: 'online' });
  }

  setPresence(roomId, onlineIds, status) {
    const r = this.room(roomId);
    r.online = new Set((onlineIds || []).map(String));
    if (status) for (const [uid, s] of Object.entries(status)) r.status.set(uid, s);
    this.emit('meta', { room: roomId, part: 'online' });
  }

  /** Drop presence and typing state of every room (the socket is down). */
  forgetPresence() {
    for (const r of this.rooms.values()) {
      if (r.online.size) {
        r.online.clear();
        this.emit('meta', { room: r.id, part: 'online' });
      }
      for (const uid of [...r.typing.keys()]) this.setTyping(r.id, uid, false);
    }
  }

  setStatus(userId, status) {
    for (const r of this.rooms.values()) {
      if (!r.members.has(userId)) continue;
      r.status.set(userId, status);
      this.emit('meta', { room: r.id, part: 'online' });
    }
  }

  setRead(roomId, userId, seq) {
    const r = this.room(roomId);
    if ((r.reads.get(userId) || 0) >= seq) return;
    r.reads.set(userId, seq);
    this.emit('meta', { room: roomId, part: 'reads' });
  }

  setTyping(roomId, userId, active) {
    const r = this.room(roomId);
    clearTimeout(r.typing.get(userId));
    if (active) {
      r.typing.set(userId, setTimeout(() => this.setTyping(roomId, userId, false), TYPING_EXPIRY_MS));
    } else if (!r.typing.delete(userId)) {
      return;
    }
    this.emit('meta', { room: roomId, part: 'typing' });
  }
}

function isNewer(candidate, existing) {
  // A copy from an older room.sync page must not undo a later edit or delete that already
  // arrived live; ISO-8601 UTC strings compare correctly as strings.
  if (existing.deleted_at && !candidate.deleted_at) return false;
  if (existing.edited_at && (!candidate.edited_at || candidate.edited_at < existing.edited_at)) return false;
  return JSON.stringify(candidate) !== JSON.stringify(existing);
}
