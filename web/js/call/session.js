// Live calls (app.calls): the call state machine — start, join, leave, end, rejoin after a reconnect — and the participants.
//
// PROTOCOL §2.2. Which rooms have a live session is in live.js; this tab's camera, microphone
// and screen in devices.js; the connections (one Peer per remote participant) in mesh.js, or,
// when the join ack says `media_path: "sfu"`, one publish and one subscription connection
// through the media router in sfu.js (`.media`: 'sfu' | 'mesh'); the call's recording in recording.js; the words of notices in notices.js;
// what views call for our microphone, camera, screen, hand and the recording (with the call's policy checks) in
// controls.js, which CallManager extends. CallManager ties them
// together and is what views and tests use (`podium.app.calls`: `.peers`, `.peerId`,
// `.session`, `.recording`).
//
// Events (via on()):
//   'live'         {room}      a room's live session appeared, changed or ended (liveSession())
//   'state'        state       idle → joining → live (→ reconnecting → live) → idle
//   'participants'             someone joined/left or changed media or hand (participants, self)
//   'stream'       peerId      a remote participant's MediaStream changed (streamOf())
//   'peer-state'   peerId      a connection's state changed (peerState())
//   'local'                    our preview, mic, camera, screen or hand changed
//   'notice'       notice|null {text, kind: info|warn|error, action?} for the call area
//   'recording'    recording|null   the call's recording (PROTOCOL §2.2): pending → recording →
//                                   processing → ready | failed; also from the join ack
//   'marked'       {mark, recording} an instructor marked a moment of the recording
//   'sfu-streams'              an SFU call's subscription changed (which participant is on which mid)
//   'talking'      peerId      an SFU call's active speaker changed (calls.talking, talking.js)

import { CallControls } from './controls.js';
import { LiveSessions } from './live.js';
import { LocalMedia } from './devices.js';
import { Mesh } from './mesh.js';
import { SfuCall } from './sfu.js';
import { CallRecording } from './recording.js';
import { CallPolicy } from './policy.js';
import { CallLobby } from './lobby.js';
import { CallBreakouts } from './breakouts.js';
import { CallRinging } from './ringing.js';
import { CallModeration } from './moderation.js';
import { TalkingTracker } from './talking.js';
import * as text from './notices.js';

export class CallManager extends CallControls {
  constructor(app) {
    super();
    this.app = app;
    this.socket = app.socket;
    this.lives = new LiveSessions((room) => this.emit('live', { room }));
    this.devices = new LocalMedia(this);
    this.mesh = new Mesh(this);
    this.sfu = new SfuCall(this);
    this.media = null; // 'sfu' | 'mesh' once joined (the join ack's media_path)
    this.talking = new TalkingTracker((peerId) => this.emit('talking', peerId)); // SFU calls (talking.js)
    this.moderation = new CallModeration(this); // instructors' mute and remove, and ours done to us
    this.callRecording = new CallRecording(this);
    this.policy = new CallPolicy(this); // hands lowered by instructors, students' cameras and screens
    this.lobby = new CallLobby(this); // the waiting room
    this.breakouts = new CallBreakouts(this); // breakout rooms
    this.ringing = new CallRinging(this); // calls placed to us, and how ours went
    this.state = 'idle';
    this.session = null;
    this.peerId = null;
    this.self = null; // our own participant object
    this.participants = new Map(); // peer_id → participant (everyone else)
    this.hand = false;
    this.noticeValue = null;
    this.offs = [];
    this.wire();
  }

  // ---- wiring ---------------------------------------------------------------------------

  wire() {
    const s = this.socket;
    const on = (type, fn) => this.offs.push(s.on(type, fn));
    const rec = this.callRecording;
    on('call.started', (f) => this.setLive(f.session));
    on('call.ended', (f) => this.onEnded(f.session));
    on('call.participant_joined', (f) => this.ours(f) && this.upsertParticipant(f.participant));
    on('call.participant_left', (f) => this.ours(f) && this.dropParticipant(f.peer_id));
    on('call.media_changed', (f) => this.ours(f) && this.upsertParticipant(f.participant));
    on('call.hand_changed', (f) => this.ours(f) && this.upsertParticipant(f.participant));
    on('call.mute_requested', (f) => this.ours(f) && this.moderation.onMuteRequested(f));
    on('call.removed', (f) => this.ours(f) && this.moderation.onRemoved(f));
    on('call.hand_lowered', (f) => this.ours(f) && this.policy.onHandLowered(f));
    on('call.permissions_changed', (f) => this.ours(f) && this.policy.onPermissionsChanged(f));
    on('call.admitted', (f) => this.ours(f) && this.lobby.onAdmitted(f));
    on('call.denied', (f) => this.ours(f) && this.lobby.onDenied(f));
    on('call.lobby_changed', (f) => this.ours(f) && this.lobby.refresh());
    // (to the user, wherever they are: a student may have left the main call)
    on('call.breakout_started', (f) => this.breakouts.onStarted(f));
    on('call.breakout_ended', (f) => this.breakouts.onEnded(f));
    on('call.ringing', (f) => this.ringing.onRinging(f));
    on('call.ring_stopped', (f) => this.ringing.onStopped(f));
    for (const type of ['call.declined', 'call.no_answer', 'call.busy']) on(type, (f) => this.ringing.onOutcome(f));
    for (const type of ['rtc.offer', 'rtc.answer', 'rtc.ice']) on(type, (f) => this.ours(f) && this.media === 'mesh' && this.mesh.onSignal(f));
    const sfu = (type, fn) => on(type, (f) => this.ours(f) && this.state === 'live' && this.media === 'sfu' && fn(f));
    sfu('sfu.feeds_changed', () => this.sfu.subscribe());
    sfu('sfu.offer', (f) => this.sfu.onOffer(f));
    sfu('sfu.restart', () => this.sfu.restart());
    sfu('sfu.talking', (f) => this.talking.onFrame(f));
    on('recording.started', (f) => rec.apply(f.recording));
    on('recording.stopped', (f) => rec.apply(f.recording));
    on('recording.progress', (f) => rec.apply({ ...f.recording, progress: f.percent }));
    on('recording.ready', (f) => rec.apply(f.recording));
    on('recording.failed', (f) => rec.apply({ ...f.recording, reason: f.recording?.reason || f.reason }));
    on('recording.marked', (f) => rec.onMarked(f));
    on('state', (state) => {
      if (state !== 'online' && this.state === 'live') this.onSocketLost();
    });
    on('hello', () => {
      if (this.state === 'reconnecting') this.rejoin();
      if (this.state === 'waiting') this.lobby.knock(); // the queue forgot our old socket: knock again
    });
    this.offs.push(this.app.on('active', (roomId) => { if (roomId) this.refreshLive(roomId); }));
    this.onPageHide = () => { if (this.state === 'live') this.socket.send('call.leave', { session: this.session.id }); };
    window.addEventListener('pagehide', this.onPageHide);
  }

  destroy() {
    this.teardown();
    this.offs.forEach((off) => off());
    window.removeEventListener('pagehide', this.onPageHide);
  }

  /** Is this frame about the session we are in? */
  ours(frame) {
    const id = typeof frame.session === 'object' ? frame.session?.id : frame.session;
    return !!this.session && String(id) === String(this.session.id) && this.state !== 'idle';
  }

  // ---- live sessions per room (live.js) ---------------------------------------------------

  liveSession(roomId) {
    return this.lives.get(roomId);
  }

  setLive(session, options) {
    this.lives.set(session, options);
  }

  /** GET /api/rooms/{id}/sessions: is a call live there? */
  refreshLive(roomId) {
    return this.lives.refresh(roomId);
  }

  /** The socket (re)subscribed to a room: from now on its call events reach us. */
  roomJoined(roomId) {
    if (String(roomId) === String(this.app.activeRoomId)) this.refreshLive(roomId);
  }

  onEnded(session) {
    if (!session) return;
    const mine = this.session && String(session.id) === String(this.session.id);
    this.setLive({ ...session, ended_at: session.ended_at || new Date().toISOString() });
    if (mine && this.state !== 'idle') {
      const room = this.session.room;
      this.teardown();
      this.notice({ text: text.ENDED, kind: 'info', room, session: session.id, ended: true });
    }
  }

  // ---- joining and leaving ----------------------------------------------------------------

  get inCall() {
    return this.state !== 'idle';
  }

  /** call.start (instructors; anyone in a group room), then join the session; `lobby`: with a waiting room. */
  async start(roomId, { lobby = false } = {}) {
    const { session } = await this.socket.request('call.start', { room: roomId, lobby });
    this.setLive(session);
    await this.join(session);
    return session;
  }

  async join(session) {
    if (this.inCall) {
      if (String(this.session.id) === String(session.id)) return;
      await this.leave();
    }
    this.notice(null);
    this.session = session;
    this.setState('joining');
    try {
      await this.devices.acquire();
      if (this.state !== 'joining') return; // left while the browser asked for devices
      const ack = await this.socket.request('call.join', { session: session.id, media: this.mediaState() });
      if (ack.waiting) this.lobby.wait(ack); // a waiting room: until an instructor admits us
      else this.applyJoin(ack);
    } catch (err) {
      this.teardown();
      this.notice({ text: text.joinError(err), kind: 'error' });
      throw err;
    }
  }

  applyJoin(ack) {
    this.session = ack.session || this.session;
    this.setLive(this.session);
    this.peerId = ack.peer_id;
    this.resumeToken = ack.resume || null; // rejoin as the same participant after a dropped socket
    const wasSfu = this.media === 'sfu';
    this.media = ack.media_path === 'sfu' ? 'sfu' : 'mesh';
    this.mesh.setIceServers(ack.ice_servers, ack.ice_ttl_s);
    this.participants.clear();
    for (const p of ack.participants || []) this.participants.set(p.peer_id, p);
    this.callRecording.joined(this.session);
    this.self = {
      peer_id: this.peerId,
      user: { id: this.app.me.id, display_name: this.app.me.display_name, role: this.app.myRole(this.session.room) },
      media: this.mediaState(),
      hand: this.hand,
      recorder: false,
      muted_by_instructor: !!ack.muted_by_instructor, may_unmute: ack.may_unmute !== false,
    };
    if (ack.muted_by_instructor) this.devices.setMic(false); // still muted by the instructor (SFU)
    this.setState('live');
    this.sendMedia(this.mediaState());
    if (this.hand) this.socket.request('call.hand', { session: this.session.id, raised: true }).catch(() => {});
    if (this.media === 'sfu' && wasSfu && ack.sfu_resumed && this.sfu.held) {
      // Resumed: Janus kept what we publish; only the subscription is made again.
      this.sfu.resume(ack.sfu_resumed, ack.ice_servers);
    } else if (this.media === 'sfu') {
      // Through the media router: publish once, subscribe to everyone on one connection.
      this.sfu.stop();
      this.sfu.start(ack.ice_servers);
    } else {
      this.sfu.stop();
      // We are the newcomer: we offer to everyone already here, except the recorder.
      for (const p of this.participants.values()) if (!p.recorder) this.mesh.peerFor(p.peer_id, { offerer: true });
    }
    this.emit('participants');
    if (this.session.lobby) this.lobby.refresh(); // instructors: who waits
    if (this.isInstructor && !this.breakouts.current) this.breakouts.refresh(); // breakout rooms open?
  }

  /** Leave the call (the session goes on for the others). */
  async leave() {
    if (!this.inCall) return;
    const session = this.session;
    const wasLive = this.state === 'live' || this.state === 'waiting'; // (waiting: leave the queue)
    this.teardown();
    if (wasLive && this.socket.online) {
      await this.socket.request('call.leave', { session: session.id }).catch((err) => console.warn('call.leave', err.code));
    }
  }

  /** End the call for everyone (instructors). */
  async end() {
    if (!this.session) return;
    await this.socket.request('call.end', { session: this.session.id });
  }

  teardown() {
    this.mesh.stop();
    this.sfu.stop();
    this.media = null;
    this.talking.clear();
    this.participants.clear();
    this.devices.stop();
    this.self = null;
    this.peerId = null;
    this.hand = false;
    this.callRecording.reset();
    this.lobby.reset();
    const was = this.state;
    this.state = 'idle';
    this.session = null;
    if (was !== 'idle') {
      this.emit('state', 'idle');
      this.emit('participants');
      this.emit('local');
    }
  }

  onSocketLost() {
    // The server drops a participant whose socket closes; the others close their side. We
    // keep our camera and microphone and join again on the next hello — in an SFU call with
    // our resume token, as the same participant: our connections to the media router stay
    // up meanwhile (media does not go through Podium), so the class keeps seeing and hearing us.
    this.mesh.closeAll();
    if (this.media === 'sfu') this.sfu.hold();
    else this.sfu.stop();
    this.talking.clear();
    this.participants.clear();
    this.setState('reconnecting');
    this.emit('participants');
  }

  async rejoin() {
    if (this.state !== 'reconnecting' || !this.session) return;
    try {
      const fields = { session: this.session.id, media: this.mediaState() };
      if (this.media === 'sfu' && this.resumeToken) fields.resume = this.resumeToken;
      const ack = await this.socket.request('call.join', fields);
      if (this.state !== 'reconnecting') return;
      this.applyJoin(ack);
    } catch (err) {
      if (err.code === 'offline' || err.code === 'disconnected' || err.code === 'timeout') return; // next hello
      const room = this.session.room;
      const ended = err.code === 'conflict' || err.code === 'not_found';
      this.teardown();
      if (ended) this.setLive({ ...this.session, room, ended_at: new Date().toISOString() });
      this.notice({ text: ended ? text.ENDED_WHILE_OFFLINE : text.joinError(err), kind: ended ? 'info' : 'error', room });
    }
  }

  // ---- participants and connections (mesh.js) ------------------------------------------------

  get peers() {
    return this.mesh.peers;
  }

  upsertParticipant(p) {
    if (!p?.peer_id) return;
    if (p.peer_id === this.peerId) {
      // Our own state as the server sees it; our device state stays the truth for media.
      this.self = { ...this.self, ...p, media: this.self?.media || p.media };
      this.emit('participants');
      return;
    }
    this.participants.set(p.peer_id, { ...this.participants.get(p.peer_id), ...p });
    this.emit('participants');
  }

  dropParticipant(peerId) {
    this.participants.delete(peerId);
    this.mesh.drop(peerId);
    this.talking.drop(peerId);
    this.emit('participants');
  }

  nameOfUser(userId) {
    for (const p of this.participants.values()) if (String(p.user?.id) === String(userId)) return p.user.display_name;
    const room = this.session && this.app.store.room(this.session.room);
    return room?.displayName(String(userId)) || 'An instructor';
  }

  streamOf(peerId) {
    return this.media === 'sfu' ? this.sfu.streamOf(peerId) : this.mesh.streamOf(peerId);
  }

  peerState(peerId) {
    return this.media === 'sfu' ? this.sfu.stateOf(peerId) : this.mesh.stateOf(peerId);
  }

  /** A participant's shared screen in an SFU call (its own published stream), or null. */
  screenOf(peerId) {
    return this.media === 'sfu' ? this.sfu.streamOf(`${peerId}:screen`) : null;
  }

  // ---- helpers ------------------------------------------------------------------------------

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  /** Show a notice in the call area (null hides it); see notices.js for the words. */
  notice(value) {
    this.noticeValue = value;
    this.emit('notice', value);
  }
}
