// Live calls (PROTOCOL §2.2): which rooms have a live session, and the one call this tab is
// in — local camera/microphone/screen, the other participants, one Peer (peer.js) per
// remote participant, and the instructor controls.
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

import * as api from './api.js';
import { Emitter } from './emitter.js';
import { Peer } from './peer.js';
import { ACTIVE_STATUSES } from './recordings.js';

const VIDEO_CONSTRAINTS = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

export class CallManager extends Emitter {
  constructor(app) {
    super();
    this.app = app;
    this.socket = app.socket;
    this.live = new Map(); // room id → live session (ended_at null)
    this.liveEvents = new Map(); // room id → count of call.started/ended seen (see refreshLive)
    this.state = 'idle';
    this.session = null;
    this.peerId = null;
    this.self = null; // our own participant object
    this.participants = new Map(); // peer_id → participant (everyone else)
    this.peers = new Map(); // peer_id → Peer
    this.iceServers = [];
    this.local = { stream: null, audio: null, camera: null, screen: null };
    this.preview = null; // MediaStream of what we send as video (camera or screen)
    this.mic = false;
    this.camera = false;
    this.hand = false;
    this.recording = null;
    this.withdrawn = null; // id of a pending recording we stopped ourselves (its failure is no news)
    this.noticeValue = null;
    this.offs = [];
    this.wire();
  }

  // ---- wiring ---------------------------------------------------------------------------

  wire() {
    const s = this.socket;
    const on = (type, fn) => this.offs.push(s.on(type, fn));
    on('call.started', (f) => this.setLive(f.session));
    on('call.ended', (f) => this.onEnded(f.session));
    on('call.participant_joined', (f) => this.ours(f) && this.upsertParticipant(f.participant));
    on('call.participant_left', (f) => this.ours(f) && this.dropParticipant(f.peer_id));
    on('call.media_changed', (f) => this.ours(f) && this.upsertParticipant(f.participant));
    on('call.hand_changed', (f) => this.ours(f) && this.upsertParticipant(f.participant));
    on('call.mute_requested', (f) => this.ours(f) && this.onMuteRequested(f));
    on('call.removed', (f) => this.ours(f) && this.onRemoved(f));
    for (const type of ['rtc.offer', 'rtc.answer', 'rtc.ice']) on(type, (f) => this.ours(f) && this.onSignal(f));
    on('recording.started', (f) => this.onRecording(f.recording));
    on('recording.stopped', (f) => this.onRecording(f.recording));
    on('recording.progress', (f) => this.onRecording({ ...f.recording, progress: f.percent }));
    on('recording.ready', (f) => this.onRecording(f.recording));
    on('recording.failed', (f) => this.onRecording({ ...f.recording, reason: f.recording?.reason || f.reason }));
    on('recording.marked', (f) => this.onMarked(f));
    on('state', (state) => {
      if (state !== 'online' && this.state === 'live') this.onSocketLost();
    });
    on('hello', () => {
      if (this.state === 'reconnecting') this.rejoin();
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

  // ---- live sessions per room -------------------------------------------------------------

  liveSession(roomId) {
    return this.live.get(String(roomId)) || null;
  }

  /** The socket (re)subscribed to a room: from now on its call events reach us. */
  roomJoined(roomId) {
    if (String(roomId) === String(this.app.activeRoomId)) this.refreshLive(roomId);
  }

  setLive(session, { fromEvent = true } = {}) {
    if (!session?.room) return;
    const room = String(session.room);
    if (fromEvent) this.liveEvents.set(room, (this.liveEvents.get(room) || 0) + 1);
    if (session.ended_at) this.live.delete(room);
    else this.live.set(room, { ...this.live.get(room), ...session });
    this.emit('live', { room });
  }

  /** GET /api/rooms/{id}/sessions: is a call live there (ended_at null)? */
  async refreshLive(roomId) {
    const room = String(roomId);
    const seen = this.liveEvents.get(room) || 0;
    try {
      const { sessions = [] } = await api.roomSessions(roomId, 5);
      // A call.started/ended that arrived meanwhile is newer than this answer.
      if ((this.liveEvents.get(room) || 0) !== seen) return sessions;
      const live = sessions.find((s) => !s.ended_at);
      if (live) this.setLive({ ...live, room: live.room || room }, { fromEvent: false });
      else if (this.live.delete(room)) this.emit('live', { room });
      return sessions;
    } catch (err) {
      if (err.status !== 403 && err.status !== 404) console.warn(`room ${roomId}: cannot list calls`, err);
      return [];
    }
  }

  onEnded(session) {
    if (!session) return;
    const mine = this.session && String(session.id) === String(this.session.id);
    this.setLive({ ...session, ended_at: session.ended_at || new Date().toISOString() });
    if (mine && this.state !== 'idle') {
      const room = this.session.room;
      this.teardown();
      this.notice({ text: 'The call has ended.', kind: 'info', room, session: session.id, ended: true });
    }
  }

  // ---- joining and leaving ----------------------------------------------------------------

  get inCall() {
    return this.state !== 'idle';
  }

  /** call.start (instructors; anyone in a group room), then join the session. */
  async start(roomId) {
    const { session } = await this.socket.request('call.start', { room: roomId });
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
      await this.acquireMedia();
      if (this.state !== 'joining') return; // left while the browser asked for devices
      const ack = await this.socket.request('call.join', { session: session.id, media: this.mediaState() });
      this.applyJoin(ack);
    } catch (err) {
      this.teardown();
      this.notice({ text: joinError(err), kind: 'error' });
      throw err;
    }
  }

  applyJoin(ack) {
    this.session = ack.session || this.session;
    this.setLive(this.session);
    this.peerId = ack.peer_id;
    this.iceServers = Array.isArray(ack.ice_servers) ? ack.ice_servers : [];
    this.scheduleIceRefresh(ack.ice_ttl_s);
    this.participants.clear();
    for (const p of ack.participants || []) this.participants.set(p.peer_id, p);
    // A late joiner learns of a recording in progress from the session in the ack.
    if (this.session.recording) this.onRecording(this.session.recording);
    else if (this.recording && ACTIVE_STATUSES.includes(this.recording.status)) this.setRecording(null);
    this.self = {
      peer_id: this.peerId,
      user: { id: this.app.me.id, display_name: this.app.me.display_name, role: this.app.myRole(this.session.room) },
      media: this.mediaState(),
      hand: this.hand,
      recorder: false,
    };
    this.setState('live');
    this.sendMedia(this.mediaState());
    if (this.hand) this.socket.request('call.hand', { session: this.session.id, raised: true }).catch(() => {});
    // We are the newcomer: we offer to everyone already here, except the recorder.
    for (const p of this.participants.values()) if (!p.recorder) this.peerFor(p.peer_id, { offerer: true });
    this.emit('participants');
  }

  /** Leave the call (the session goes on for the others). */
  async leave() {
    if (!this.inCall) return;
    const session = this.session;
    const wasLive = this.state === 'live';
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

  /**
   * TURN credentials in the join ack expire after `ttl_s`: fetch fresh ones (GET
   * /api/ice-servers) before then, for connections made later and for ICE restarts.
   */
  scheduleIceRefresh(ttlS) {
    clearTimeout(this.iceTimer);
    if (!ttlS || ttlS <= 0) return;
    this.iceTimer = setTimeout(async () => {
      if (this.state !== 'live') return;
      try {
        const data = await api.iceServers();
        if (this.state !== 'live' || !Array.isArray(data.ice_servers)) return;
        this.iceServers = data.ice_servers;
        for (const peer of this.peers.values()) peer.setIceServers(this.iceServers);
        this.scheduleIceRefresh(data.ttl_s);
      } catch (err) {
        console.warn('ice-servers refresh failed', err);
        this.scheduleIceRefresh(60);
      }
    }, Math.max(10, ttlS * 0.8) * 1000);
  }

  teardown() {
    clearTimeout(this.iceTimer);
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    this.participants.clear();
    for (const t of [this.local.audio, this.local.camera, this.local.screen]) t?.stop();
    this.local = { stream: null, audio: null, camera: null, screen: null };
    this.preview = null;
    this.self = null;
    this.peerId = null;
    this.hand = false;
    this.recording = null;
    this.withdrawn = null;
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
    // keep our camera and microphone and join again (with a new peer_id) on the next hello.
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    this.participants.clear();
    this.setState('reconnecting');
    this.emit('participants');
  }

  async rejoin() {
    if (this.state !== 'reconnecting' || !this.session) return;
    try {
      const ack = await this.socket.request('call.join', { session: this.session.id, media: this.mediaState() });
      if (this.state !== 'reconnecting') return;
      this.applyJoin(ack);
    } catch (err) {
      if (err.code === 'offline' || err.code === 'disconnected' || err.code === 'timeout') return; // next hello
      const room = this.session.room;
      const ended = err.code === 'conflict' || err.code === 'not_found';
      this.teardown();
      if (ended) this.setLive({ ...this.session, room, ended_at: new Date().toISOString() });
      this.notice({ text: ended ? 'The call ended while you were offline.' : joinError(err), kind: ended ? 'info' : 'error', room });
    }
  }

  // ---- local media ------------------------------------------------------------------------

  async acquireMedia() {
    if (this.local.audio || this.local.camera) return;
    const md = navigator.mediaDevices;
    if (!md?.getUserMedia) {
      this.notice({ text: 'This browser cannot use a camera or microphone here; you joined to watch and listen.', kind: 'warn' });
      return;
    }
    let stream = null;
    const missing = [];
    try {
      stream = await md.getUserMedia({ audio: true, video: VIDEO_CONSTRAINTS });
    } catch (err) {
      console.info('getUserMedia (audio+video) failed, trying each alone', err.name);
      const tracks = [];
      for (const kind of ['audio', 'video']) {
        try {
          const s = await md.getUserMedia(kind === 'audio' ? { audio: true } : { video: VIDEO_CONSTRAINTS });
          tracks.push(...s.getTracks());
        } catch {
          missing.push(kind === 'audio' ? 'microphone' : 'camera');
        }
      }
      stream = tracks.length ? new MediaStream(tracks) : null;
    }
    if (this.state !== 'joining') {
      stream?.getTracks().forEach((t) => t.stop());
      return;
    }
    this.local.stream = stream || new MediaStream();
    this.local.audio = stream?.getAudioTracks()[0] || null;
    this.local.camera = stream?.getVideoTracks()[0] || null;
    this.mic = !!this.local.audio;
    this.camera = !!this.local.camera;
    this.updatePreview();
    if (missing.length) {
      this.notice({ text: `No access to your ${missing.join(' or ')} — the others will not ${missing.length === 2 ? 'see or hear' : missing[0] === 'camera' ? 'see' : 'hear'} you. Check the browser's permissions.`, kind: 'warn' });
    }
  }

  updatePreview() {
    const video = this.local.screen || this.local.camera;
    this.preview = video ? new MediaStream([video]) : null;
    this.emit('local');
  }

  /** What the peers send: the microphone and the camera, or the screen while sharing. */
  outgoing() {
    return { audio: this.local.audio, video: this.local.screen || this.local.camera, stream: this.local.stream };
  }

  mediaState() {
    return { audio: !!this.local.audio && this.mic, video: !!this.local.camera && this.camera, screen: !!this.local.screen };
  }

  sendMedia(fields) {
    if (this.state !== 'live') return;
    if (this.self) this.self.media = { ...this.self.media, ...fields };
    this.emit('participants');
    this.socket.request('call.media', { session: this.session.id, ...fields })
      .then((data) => { if (data.participant && this.self) this.self = { ...this.self, ...data.participant }; this.emit('participants'); })
      .catch((err) => console.warn('call.media', err.code));
  }

  setMic(on) {
    if (!this.local.audio) {
      if (on) this.notice({ text: 'No microphone is available to this page.', kind: 'warn' });
      return;
    }
    this.mic = on;
    this.local.audio.enabled = on;
    this.sendMedia({ audio: on });
    this.emit('local');
  }

  toggleMic() {
    this.setMic(!this.mic);
  }

  setCamera(on) {
    if (!this.local.camera) {
      if (on) this.notice({ text: 'No camera is available to this page.', kind: 'warn' });
      return;
    }
    this.camera = on;
    // Disabled, the track sends black frames; the tile shows the avatar (media.video false).
    this.local.camera.enabled = on;
    this.sendMedia({ video: on });
    this.emit('local');
  }

  toggleCamera() {
    this.setCamera(!this.camera);
  }

  async toggleScreen() {
    if (this.local.screen) return this.stopScreen();
    if (!navigator.mediaDevices?.getDisplayMedia) {
      this.notice({ text: 'This browser cannot share the screen.', kind: 'warn' });
      return;
    }
    let track;
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
      track = stream.getVideoTracks()[0];
    } catch (err) {
      if (err.name !== 'NotAllowedError' && err.name !== 'AbortError') {
        this.notice({ text: `Screen sharing failed: ${err.message || err.name}`, kind: 'error' });
      }
      return;
    }
    if (!track || this.state !== 'live') {
      track?.stop();
      return;
    }
    track.contentHint = 'detail';
    track.addEventListener('ended', () => { if (this.local.screen === track) this.stopScreen(); });
    this.local.screen = track;
    await this.replaceVideo(track);
    this.updatePreview();
    this.sendMedia({ screen: true });
  }

  async stopScreen() {
    const track = this.local.screen;
    if (!track) return;
    this.local.screen = null;
    track.stop();
    await this.replaceVideo(this.local.camera);
    this.updatePreview();
    this.sendMedia({ screen: false });
  }

  async replaceVideo(track) {
    await Promise.all([...this.peers.values()].map((p) => p.replaceTrack('video', track).catch((err) => console.warn('replaceTrack', err))));
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
      this.notice({ text: `Could not ${raised ? 'raise' : 'lower'} your hand: ${err.message}`, kind: 'error' });
    }
    this.emit('local');
    this.emit('participants');
  }

  // ---- instructor controls ------------------------------------------------------------------

  get isInstructor() {
    return !!this.session && this.app.isInstructor(this.session.room);
  }

  async muteParticipant(peerId) {
    await this.socket.request('call.mute', { session: this.session.id, peer_id: peerId });
  }

  async removeParticipant(peerId) {
    await this.socket.request('call.remove', { session: this.session.id, peer_id: peerId });
  }

  get recordingActive() {
    return !!this.recording && ACTIVE_STATUSES.includes(this.recording.status);
  }

  async toggleRecording() {
    if (!this.session) return;
    const type = this.recordingActive ? 'recording.stop' : 'recording.start';
    if (type === 'recording.stop' && this.recording.status === 'pending') this.withdrawn = this.recording.id;
    try {
      const data = await this.socket.request(type, { session: this.session.id });
      if (data.recording) this.onRecording(data.recording);
    } catch (err) {
      this.withdrawn = null;
      if (err.code === 'unavailable') {
        this.notice({ text: 'Recording is not available on this server yet. The call goes on as usual.', kind: 'info' });
      } else if (err.code === 'forbidden') {
        this.notice({ text: 'Only the room’s instructors can record.', kind: 'warn' });
      } else {
        this.notice({ text: `Recording could not ${type === 'recording.start' ? 'start' : 'stop'}: ${err.message}`, kind: 'error' });
      }
    }
  }

  /** recording.mark {session, label} (instructors, while recording) → the mark. */
  async addMark(label) {
    if (!this.session) throw new Error('not in a call');
    const { mark } = await this.socket.request('recording.mark', { session: this.session.id, label });
    return mark;
  }

  onRecording(recording) {
    if (!recording?.id || !this.session || String(recording.session) !== String(this.session.id)) return;
    const prev = this.recording && String(this.recording.id) === String(recording.id) ? this.recording : null;
    if (prev && STATUS_RANK[recording.status] < STATUS_RANK[prev.status]) return; // older news
    const next = { ...prev, ...recording };
    if (recording.progress === null || recording.progress === undefined) next.progress = prev?.progress ?? null;
    this.setRecording(next);
    if (prev?.status === next.status) return;
    const instructor = this.isInstructor;
    if (next.status === 'failed' && instructor) {
      if (this.withdrawn === next.id) {
        this.notice({ text: 'The recording was canceled before it started.', kind: 'info', topic: 'recording' });
      } else {
        this.notice({ text: `Recording failed: ${next.reason || 'no reason given'}`, kind: 'error', topic: 'recording' });
      }
    } else if (next.status === 'ready' && instructor) {
      this.notice({ text: 'The recording is ready.', kind: 'info', topic: 'recording', recordings: this.session.room });
    }
  }

  setRecording(recording) {
    this.recording = recording;
    this.emit('recording', recording);
  }

  onMarked(frame) {
    if (!this.recording || String(frame.recording) !== String(this.recording.id) || !frame.mark) return;
    this.emit('marked', { mark: frame.mark, recording: this.recording });
  }

  // ---- server events ------------------------------------------------------------------------

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
    const peer = this.peers.get(peerId);
    if (peer) {
      peer.close();
      this.peers.delete(peerId);
    }
    this.emit('participants');
  }

  nameOfUser(userId) {
    for (const p of this.participants.values()) if (String(p.user?.id) === String(userId)) return p.user.display_name;
    const room = this.session && this.app.store.room(this.session.room);
    return room?.displayName(String(userId)) || 'An instructor';
  }

  onMuteRequested(frame) {
    const by = this.nameOfUser(frame.by);
    const wasOn = this.mic;
    this.setMic(false);
    this.notice({ text: wasOn ? `${by} muted your microphone. Unmute when you want to speak.` : `${by} asked everyone to stay muted.`, kind: 'info', muted: true });
  }

  onRemoved(frame) {
    const by = this.nameOfUser(frame.by);
    const room = this.session.room;
    this.teardown();
    this.notice({ text: `${by} removed you from the call. You cannot rejoin this session.`, kind: 'error', room, removed: true });
  }

  onSignal(frame) {
    if (this.state !== 'live' || !frame.from || frame.from === this.peerId) return;
    let peer = this.peers.get(frame.from);
    if (!peer) {
      if (frame.type !== 'rtc.offer') return; // ICE or an answer for a connection we closed
      peer = this.peerFor(frame.from, { offerer: false });
    }
    peer.handle(frame);
  }

  peerFor(peerId, { offerer }) {
    let peer = this.peers.get(peerId);
    if (peer) return peer;
    const sessionId = this.session.id;
    peer = new Peer({
      myPeerId: this.peerId,
      remotePeerId: peerId,
      recorder: !!this.participants.get(peerId)?.recorder,
      iceServers: this.iceServers,
      local: () => this.outgoing(),
      signal: (type, fields) => {
        if (this.state !== 'live' || String(this.session?.id) !== String(sessionId)) return;
        this.socket.request(type, { session: sessionId, to: peerId, ...fields }).catch((err) => {
          // forbidden: the other side left in the meantime (participant_left follows).
          if (err.code !== 'forbidden') console.warn(`${type} to ${peerId} failed: ${err.code}`);
        });
      },
      onStream: () => this.emit('stream', peerId),
      onState: () => this.emit('peer-state', peerId),
    });
    this.peers.set(peerId, peer);
    if (offerer) peer.startAsOfferer();
    return peer;
  }

  streamOf(peerId) {
    return this.peers.get(peerId)?.stream || null;
  }

  peerState(peerId) {
    return this.peers.get(peerId)?.state || 'new';
  }

  // ---- helpers ------------------------------------------------------------------------------

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  notice(value) {
    this.noticeValue = value;
    this.emit('notice', value);
  }
}

const STATUS_RANK = { pending: 0, recording: 1, processing: 2, ready: 3, failed: 3 };

function joinError(err) {
  switch (err?.code) {
    case 'forbidden': return `You cannot join this call: ${err.message}`;
    case 'conflict': return 'This call has already ended.';
    case 'not_found': return 'This call no longer exists.';
    case 'offline':
    case 'disconnected': return 'You are offline; join again once the connection is back.';
    default: return `Could not join the call: ${err?.message || err}`;
  }
}
