// The signed-in application: owns the socket, store, outbox and room sync, turns server
// events into store updates, and offers the actions views call. Views listen to:
//   'rooms' (room list or unread counts changed), 'active' (selected room changed),
//   'connection' (socket state), 'outbox' (pending messages changed), 'me' (our own name or
//   avatar changed). Live calls are in
//   `app.calls` (call/session.js), file look-ups and signed links in `app.files` (files.js), uploads in
//   `app.uploads` (uploads.js), recordings in `app.recordings` (recordings.js), each with events
//   of their own; read marks and unread counts in `app.reads` (read-marks.js), our profile's
//   actions in `app.profile` (profile.js).

import * as api from './api.js';
import { Emitter } from './emitter.js';
import { ChatSocket } from './socket.js';
import { Store } from './store.js';
import { Outbox } from './outbox.js';
import { RoomSync } from './sync.js';
import { TypingNotifier } from './typing.js';
import { CallManager } from './call/session.js';
import { FileService } from './files.js';
import { Uploads } from './uploads.js';
import { RecordingService } from './recordings.js';
import { ChatModeration } from './moderation.js';
import { PollService } from './polls.js';
import { RoomPreviews } from './previews.js';
import { ProfileActions } from './profile.js';
import { ReadMarks } from './read-marks.js';

const ROOMS_REFRESH_MS = 30000;
const USER_KEY = 'podium.user';

export const REACTION_EMOJI = ['👍', '❤️', '😂', '🎉', '❓'];

export function rememberUser(user) {
  localStorage.setItem(USER_KEY, JSON.stringify(user));
}

export function rememberedUser() {
  try {
    return JSON.parse(localStorage.getItem(USER_KEY) || 'null');
  } catch {
    return null;
  }
}

export class App extends Emitter {
  constructor(user, { onLogout }) {
    super();
    this.me = user;
    this.onLogout = onLogout;
    this.rooms = new Map(); // id → room object (GET /api/rooms), newest activity first
    this.roomsLoaded = false;
    this.roomsError = null;
    this.activeRoomId = null;
    this.membersRefresh = new Map(); // room id → pending timer
    this.previews = new RoomPreviews(); // the room list's last messages (previews.js)
    this.store = new Store();
    this.socket = new ChatSocket({ getToken: api.getToken, probe: () => this.probe() });
    this.outbox = new Outbox({ socket: this.socket, storageKey: `podium.outbox.${user.id}` });
    this.sync = new RoomSync({
      socket: this.socket,
      store: this.store,
      getMe: () => this.me,
      onJoined: (roomId, ack) => this.onJoined(roomId, ack),
      onMessages: (roomId, messages) => this.afterMessages(roomId, messages),
    });
    this.typing = new TypingNotifier((room, active) => this.socket.send('typing', { room, active }));
    this.calls = new CallManager(this); // live calls: banner, stage, peers (call/session.js)
    this.serverOffsetMs = 0; // server clock minus ours, from `hello` (signed links expire on theirs)
    this.files = new FileService({ serverOffsetMs: () => this.serverOffsetMs });
    this.uploads = new Uploads({ files: this.files, outbox: this.outbox });
    this.recordings = new RecordingService({ socket: this.socket, serverOffsetMs: () => this.serverOffsetMs });
    this.moderation = new ChatModeration(this); // the rooms' chat rules: locked, slow mode, bans (moderation.js)
    this.polls = new PollService({ socket: this.socket }); // poll views and live results (polls.js)
    this.reads = new ReadMarks(this); // how far we read each room, unread counts (read-marks.js)
    this.profile = new ProfileActions(this); // our name, picture and password (profile.js)
    this.timers = [];
    this.wire();
  }

  start() {
    this.socket.start();
    this.loadRooms();
    this.timers.push(setInterval(() => this.loadRooms(), ROOMS_REFRESH_MS));
    this.onFocus = () => this.loadRooms();
    window.addEventListener('focus', this.onFocus);
  }

  destroy() {
    for (const t of this.timers) clearInterval(t);
    window.removeEventListener('focus', this.onFocus);
    this.typing.stop();
    this.calls.destroy();
    this.recordings.destroy();
    this.uploads.abortAll();
    this.files.clear();
    this.socket.stop();
    this.store.clear();
  }

  wire() {
    const s = this.socket;
    s.on('state', (state) => {
      // Disconnected, we no longer know who is online or typing; room.join tells us again.
      if (state !== 'online') this.store.forgetPresence();
      this.emit('connection', state);
    });
    s.on('hello', (hello) => {
      if (hello.user) this.me = { ...this.me, ...hello.user };
      const serverNow = Date.parse(hello.server_time);
      if (!Number.isNaN(serverNow)) this.serverOffsetMs = serverNow - Date.now();
      this.outbox.flush();
      this.loadRooms();
    });
    s.on('unauthorized', () => {
      // Our own password change signs out the socket opened with the old token: reconnect with the new one.
      if (this.rekeying) return;
      if (this.socket.usedToken !== (api.getToken() || '')) {
        this.socket.restart();
        return;
      }
      this.logout('Your session has expired. Please sign in again.', { keepOutbox: true });
    });
    s.on('user.updated', (f) => this.onUserUpdated(f.user));
    s.on('room.updated', (f) => this.onRoomUpdated(f.room));
    s.on('message.new', (f) => this.onMessage(f.message));
    s.on('message.updated', (f) => this.onMessage(f.message));
    s.on('message.deleted', (f) => this.onMessage(f.message));
    s.on('message.reaction', (f) => this.store.setReactions(f.room, f.message_id, f.reactions));
    s.on('typing', (f) => {
      if (f.user_id !== this.me.id) this.store.setTyping(f.room, f.user_id, !!f.active);
    });
    s.on('read', (f) => {
      this.store.setRead(f.room, f.user_id, f.seq);
      if (f.user_id === this.me.id) this.emit('rooms');
    });
    s.on('presence.joined', (f) => {
      this.store.setOnline(f.room, f.user_id, true);
      if (!this.store.room(f.room).members.has(f.user_id)) this.refreshMembersSoon(f.room);
    });
    s.on('presence.left', (f) => {
      this.store.setOnline(f.room, f.user_id, false);
      this.store.setTyping(f.room, f.user_id, false);
    });
    s.on('presence.status', (f) => this.store.setStatus(f.user_id, f.status));
    // Someone added us to a room, or removed us: refresh the room list at once.
    s.on('room.added', () => this.loadRooms());
    s.on('room.removed', () => this.loadRooms());
    // Someone joined or left a room: its member count and people list follow at once.
    s.on('member.added', (f) => this.onMembersChanged(f));
    s.on('member.removed', (f) => this.onMembersChanged(f));
    s.on('members.changed', (f) => this.onMembersChanged(f)); // many at once: an LMS roster sync
    // A room's files were renamed, moved or deleted: forget what we knew; open Files panels reload.
    s.on('files.changed', (f) => {
      for (const id of f.files || []) this.files.forget(id);
      this.emit('files', { room: f.room, files: f.files || [], action: f.action });
    });
    this.outbox.on('sent', (message) => this.onMessage(message));
    this.outbox.on('change', () => this.emit('outbox'));
  }

  // ---- server → state -------------------------------------------------------------------

  onMessage(message) {
    if (!message?.room) return;
    if (!this.rooms.has(message.room)) this.loadRooms();
    const gap = this.store.upsertMessages(message.room, [message]);
    this.afterMessages(message.room, [message]);
    if (gap) this.sync.fillGap(message.room);
  }

  /** Someone's name or avatar changed (`user.updated`, or our own profile change). */
  onUserUpdated(user) {
    if (!user?.id) return;
    if (user.id === this.me.id) {
      this.me = { ...this.me, ...user };
      rememberUser(this.me);
      this.emit('me', this.me);
    }
    this.store.updateUser(user);
    this.emit('rooms'); // direct rooms show the other person's name and picture
  }

  /** room.updated {room: {id, avatar}}: a room's picture changed. */
  onRoomUpdated(patch) {
    const room = patch?.id && this.rooms.get(String(patch.id));
    if (!room) return;
    Object.assign(room, patch);
    this.emit('rooms');
  }

  /** member.added / member.removed / members.changed {room, members_count}: fresh count, and the member list reloaded. */
  onMembersChanged(f) {
    const room = this.rooms.get(f.room);
    if (!room) return;
    if (Number.isInteger(f.members_count)) room.members_count = f.members_count;
    this.refreshMembersSoon(f.room);
    this.emit('rooms');
  }

  afterMessages(roomId, messages) {
    const room = this.rooms.get(roomId);
    let newest = 0;
    for (const m of messages) {
      if (m.sender?.id === this.me.id) this.outbox.settle(m);
      else if (m.sender?.id) this.store.setTyping(roomId, m.sender.id, false);
      newest = Math.max(newest, m.seq);
    }
    let reload = false; // the room's previewed message was deleted: the list names the one before
    if (room) for (const m of messages) reload = this.previews.note(room, m) || reload;
    if (reload) this.loadRooms();
    if (room && newest > (room.last_seq || 0)) {
      room.last_seq = newest;
      // Newest activity first: move the room to the top of the list.
      this.rooms.delete(roomId);
      this.rooms = new Map([[roomId, room], ...this.rooms]);
    }
    this.emit('rooms');
  }

  onJoined(roomId, ack) {
    const room = this.rooms.get(roomId);
    if (room) {
      room.last_seq = Math.max(room.last_seq || 0, ack.last_seq || 0);
      if (ack.my_role) room.my_role = ack.my_role;
    }
    this.calls.roomJoined(roomId);
    this.emit('rooms');
  }

  async loadRooms() {
    if (this.loadingRooms) {
      // The answer in flight may predate what made us ask (a deletion): ask once more after it.
      this.loadRoomsAgain = true;
      return;
    }
    this.loadingRooms = true;
    this.loadRoomsAgain = false;
    try {
      const { rooms = [] } = await api.listRooms();
      const next = new Map();
      for (const room of rooms) {
        const prev = this.rooms.get(room.id);
        next.set(room.id, prev ? this.previews.merge(prev, room) : room);
      }
      // Rooms we were removed from: stop re-joining them on every reconnect.
      for (const id of [...this.sync.wanted]) if (!next.has(id) && id !== this.activeRoomId) this.sync.forget(id);
      this.rooms = next;
      this.roomsLoaded = true;
      this.roomsError = null;
      this.sync.want(rooms.map((r) => r.id));
    } catch (err) {
      this.roomsError = err.message;
    } finally {
      this.loadingRooms = false;
    }
    this.emit('rooms');
    if (this.loadRoomsAgain && !this.loggedOut) this.loadRooms();
  }

  refreshMembersSoon(roomId) {
    if (this.membersRefresh.has(roomId)) return;
    this.membersRefresh.set(roomId, setTimeout(() => {
      this.membersRefresh.delete(roomId);
      this.refreshMembers(roomId).catch((err) => console.warn(`room ${roomId}: members refresh failed`, err));
    }, 300));
  }

  /** GET /api/rooms/{id}: the member list with room roles, and fresh room fields. */
  async refreshMembers(roomId) {
    const data = await api.getRoom(roomId);
    if (data.room) {
      const prev = this.rooms.get(roomId);
      if (prev) Object.assign(prev, this.previews.merge(prev, { ...data.room }));
      if (data.room.my_role) this.store.room(roomId).myRole = data.room.my_role;
    }
    if (Array.isArray(data.members)) this.store.setMembers(roomId, data.members, this.me);
    this.emit('rooms');
    return data;
  }

  probe() {
    const roomId = this.activeRoomId && this.store.room(this.activeRoomId).joined
      ? this.activeRoomId
      : [...this.store.rooms.values()].find((r) => r.joined)?.id;
    return roomId ? this.refreshPresence(roomId) : Promise.resolve();
  }

  /** presence.list: who is online in the room, with their status (online/away/busy). */
  async refreshPresence(roomId) {
    const data = await this.socket.request('presence.list', { room: roomId });
    this.store.setPresence(roomId, data.online, data.status);
  }

  // ---- queries ----------------------------------------------------------------------------

  /** The name to show for a room: for a direct room, the other person's name. */
  roomTitle(roomId) {
    const room = this.rooms.get(roomId);
    const other = room?.kind === 'direct' ? this.otherMember(roomId) : null;
    if (other) return other.display_name || other.username || room.name;
    return room?.name || '';
  }

  /** The other person of a direct room (a user), once its members are known. */
  otherMember(roomId) {
    for (const [uid, member] of this.store.room(roomId).members) if (uid !== this.me.id) return member.user;
    return null;
  }

  myRole(roomId) {
    return this.store.room(roomId).myRole || this.rooms.get(roomId)?.my_role || null;
  }

  isInstructor(roomId) {
    return this.myRole(roomId) === 'instructor';
  }

  // ---- actions ----------------------------------------------------------------------------

  selectRoom(roomId) {
    if (roomId === this.activeRoomId) return;
    this.typing.stop();
    this.activeRoomId = roomId;
    this.emit('active', roomId);
    if (roomId) {
      this.refreshMembers(roomId).catch((err) => console.warn(`room ${roomId}: cannot load members`, err));
    }
  }

  async createRoom({ kind, name, usernames }) {
    const { room } = await api.createRoom({ kind, name, memberUsernames: usernames });
    this.rooms = new Map([[room.id, room], ...[...this.rooms].filter(([id]) => id !== room.id)]);
    this.sync.want([room.id]);
    this.emit('rooms');
    return room;
  }

  async addMember(roomId, username, role) {
    const data = await api.addMember(roomId, username, role);
    await this.refreshMembers(roomId);
    return data.member;
  }

  send(roomId, { content, kind = 'text', reply_to = null }) {
    this.typing.sent(roomId);
    return this.outbox.add(roomId, { content, kind, reply_to });
  }

  /** Upload files (a FileList or array) into the room; each is posted as a message when stored. */
  attach(roomId, files) {
    this.typing.stop();
    return [...files].map((file) => this.uploads.add(roomId, file, { post: true }));
  }

  /** Upload files into one of the room's folders (the Files panel); nothing is posted. */
  uploadToFolder(roomId, folder, files) {
    return [...files].map((file) => this.uploads.add(roomId, file, { folder, post: false }));
  }

  async edit(message, content) {
    const { message: updated } = await this.socket.request('message.edit', { message_id: message.id, content });
    if (updated) this.onMessage(updated);
  }

  async remove(message) {
    const { message: updated } = await this.socket.request('message.delete', { message_id: message.id });
    if (updated) this.onMessage(updated);
  }

  async react(message, emoji, on) {
    const mine = new Set(message.reactions?.[emoji] || []);
    if (on) mine.add(this.me.id);
    else mine.delete(this.me.id);
    const optimistic = { ...(message.reactions || {}), [emoji]: [...mine] };
    if (!mine.size) delete optimistic[emoji];
    this.store.setReactions(message.room, message.id, optimistic);
    try {
      const data = await this.socket.request('message.react', { message_id: message.id, emoji, on });
      this.store.setReactions(message.room, message.id, data.reactions);
    } catch (err) {
      this.store.setReactions(message.room, message.id, message.reactions || {});
      throw err;
    }
  }

  logout(reason = null, { keepOutbox = false } = {}) {
    // A request sent with the old token while our password change is in flight: not a sign-out.
    if (this.rekeying) return;
    if (this.loggedOut) return; // the socket (4401) and an HTTP 401 may both report expiry
    this.loggedOut = true;
    if (!keepOutbox) this.outbox.clearAll();
    api.setToken(null);
    if (!keepOutbox) localStorage.removeItem(USER_KEY);
    this.destroy();
    this.onLogout(reason);
  }
}
