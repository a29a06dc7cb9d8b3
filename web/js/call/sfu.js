// A call through the media router (Janus; docs/PROTOCOL-ADDITIONS.md "SFU calls"): one publish connection, one subscription.
//
// When the call.join ack says `media_path: "sfu"`, the session (session.js) uses this instead
// of the mesh:
//
// * Publish once: one RTCPeerConnection sends the microphone and the camera, the camera as a
//   simulcast set (rids h/m/l, each half the size of the one before, as many as the camera's
//   resolution allows: simulcastLayers()); `sfu.publish` carries the offer and returns Janus's
//   answer; our candidates trickle as `sfu.ice {target: "publish"}`.
// * Subscribe on one multistream connection: `sfu.subscribe` → an offer from Janus with every
//   other publisher's streams (`streams: [{mid, type, peer_id}]`), answered with `sfu.answer`;
//   again on `sfu.feeds_changed` (someone's publish connection is up); Janus's own new offers
//   arrive as `sfu.offer`. Each participant's tracks (found by mid) make their MediaStream.
// * `sfu.restart` (Janus restarted): both connections are closed and made again.
// * The socket to Podium drops: hold() keeps every connection (media flows to and from Janus
//   without Podium); rejoined with the resume token, resume() keeps the publishers Janus kept
//   and makes the subscription again, the old one playing until the new one is answered.
// * A screen share is a second publish connection (`sfu.publish {source: "screen"}`).
// * Per tile (views call `want(peerId, {layer, send})`): the simulcast layer the tile's size
//   needs, and whether its video is sent at all (visible tiles and recent speakers, last-N);
//   sent to the server as `sfu.configure {mid, substream, send}` when it changes.
//
// Subscription work (subscribe, answer an offer) runs one step at a time, in order.

const MAX_LAYERS = 3;
// Bitrate caps per layer (h, m, l) for a 720p camera; smaller cameras scale down by themselves.
const LAYER_BITRATES = [1_200_000, 350_000, 120_000];
const RIDS = ['h', 'm', 'l'];

/** How many simulcast layers a camera of this size can send (Chromium's own limits). */
export function simulcastLayers(track) {
  const s = track?.getSettings?.() || {};
  const shortSide = Math.min(s.width || 640, s.height || 480);
  if (shortSide >= 540) return 3;
  if (shortSide >= 360) return 2;
  return 1;
}

/** sendEncodings of `n` layers: rid h (full size) first, then m (½) and l (¼): Janus's default rid order. */
export function simulcastEncodings(n) {
  return RIDS.slice(0, Math.max(1, Math.min(MAX_LAYERS, n)))
    .map((rid, i) => ({ rid, active: true, scaleResolutionDownBy: 2 ** i, maxBitrate: LAYER_BITRATES[i] }));
}

export class SfuCall {
  /** `calls`: the CallManager (session.js): session, socket, devices, events. */
  constructor(calls) {
    this.calls = calls;
    this.iceServers = [];
    this.pub = null; // {pc, pending: candidates queued until the publish ack, ready}
    this.screenPub = null;
    this.sub = null; // RTCPeerConnection of the subscription
    this.streams = []; // [{mid, type, peer_id, feed}] of the subscription
    this.remote = new Map(); // peer_id → MediaStream of its tracks
    this.wanted = new Map(); // mid → {substream, send} last sent with sfu.configure
    this.layers = 0; // simulcast layers we publish
    this.chain = Promise.resolve();
    this.generation = 0; // bumped by stop(): work of an older generation is dropped
    this.held = false; // the socket dropped: our connections wait for a resume
    this.oldSub = null; // after a resume: the subscription of before, until the new one is answered
  }

  get sessionId() {
    return this.calls.session?.id;
  }

  request(type, fields = {}) {
    return this.calls.socket.request(type, { session: this.sessionId, ...fields });
  }

  live(gen) {
    return gen === this.generation && this.calls.state === 'live' && this.calls.media === 'sfu';
  }

  /** Joined an SFU call: publish and subscribe. */
  start(iceServers) {
    this.iceServers = Array.isArray(iceServers) ? iceServers : [];
    const gen = this.generation;
    this.publish(gen).catch((err) => {
      if (!this.live(gen)) return;
      this.failed('publish', err, gen);
      this.calls.notice({ text: 'The media server did not take your camera and microphone: the others cannot see or hear you. Leave and join the call again.', kind: 'error' });
    });
    this.subscribe();
  }

  failed(what, err, gen) {
    if (!this.live(gen)) return;
    console.warn(`sfu ${what} failed`, err?.code || err);
  }

  // ---- publishing -----------------------------------------------------------------------

  /** One connection: the microphone and the camera (simulcast), or the screen (`source: "screen"`). */
  async publish(gen, source = 'camera') {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    const slot = { pc, pending: [], ready: false, source };
    if (source === 'screen') this.screenPub = slot;
    else this.pub = slot;
    const out = this.calls.devices.outgoing();
    const stream = new MediaStream();
    if (source === 'camera') {
      const camera = this.calls.devices.local.camera;
      if (out.audio) pc.addTransceiver(out.audio, { direction: 'sendonly', streams: [stream] });
      if (camera) {
        this.layers = simulcastLayers(camera);
        pc.addTransceiver(camera, { direction: 'sendonly', streams: [stream], sendEncodings: simulcastEncodings(this.layers) });
      }
      if (!out.audio && !camera) pc.addTransceiver('audio', { direction: 'sendonly', streams: [stream] });
    } else {
      pc.addTransceiver(this.calls.devices.local.screen, { direction: 'sendonly', streams: [stream] });
    }
    const target = source === 'screen' ? 'screen' : 'publish';
    pc.onicecandidate = ({ candidate }) => {
      const c = candidate ? candidate.toJSON() : null;
      if (slot.ready) this.trickle(target, c, gen);
      else slot.pending.push(c);
    };
    pc.onconnectionstatechange = () => {
      if (this.live(gen)) this.calls.emit('sfu-state', { source, state: pc.connectionState });
    };
    await pc.setLocalDescription(await pc.createOffer());
    if (!this.live(gen)) return;
    const fields = { sdp: pc.localDescription.sdp };
    if (source === 'screen') fields.source = 'screen';
    const ack = await this.request('sfu.publish', fields);
    if (!this.live(gen) || pc.signalingState === 'closed') return;
    await pc.setRemoteDescription({ type: 'answer', sdp: ack.sdp });
    slot.ready = true;
    for (const c of slot.pending.splice(0)) this.trickle(target, c, gen);
  }

  trickle(target, candidate, gen) {
    if (!this.live(gen)) return;
    this.request('sfu.ice', { target, candidate }).catch((err) => this.failed(`ice ${target}`, err, gen));
  }

  /** Share the screen as a second published stream (the camera keeps going). */
  async startScreen() {
    if (this.screenPub || !this.calls.devices.local.screen) return;
    const gen = this.generation;
    await this.publish(gen, 'screen').catch((err) => this.failed('screen publish', err, gen));
  }

  async stopScreen() {
    const slot = this.screenPub;
    if (!slot) return;
    this.screenPub = null;
    slot.pc.close();
    await this.request('sfu.unpublish', { source: 'screen' }).catch((err) => this.failed('screen unpublish', err, this.generation));
  }

  /**
   * Another camera or microphone (devices.js switchDevice): `track` replaces what the publish
   * connection sends of `kind` ('audio' | 'video'), without renegotiating. A kind it was not
   * published with (no such device at join) cannot be added this way: false, logged.
   */
  async replaceTrack(kind, track) {
    const pc = this.pub?.pc;
    if (!pc || pc.signalingState === 'closed') return false;
    const tr = pc.getTransceivers().find((t) => !t.stopped && (t.sender.track?.kind || t.receiver.track?.kind) === kind);
    if (!tr) {
      console.warn(`sfu: no ${kind} sender to switch; the new device is used after the next publish`);
      return false;
    }
    await tr.sender.replaceTrack(track);
    return true;
  }

  // ---- the subscription ---------------------------------------------------------------------

  /** Run `step` after the subscription work queued before it. */
  queue(step) {
    const gen = this.generation;
    this.chain = this.chain.then(() => (this.live(gen) ? step(gen) : null)).catch((err) => this.failed('subscription', err, gen));
    return this.chain;
  }

  /** sfu.subscribe: add whoever publishes now to our one subscription connection. */
  subscribe() {
    return this.queue(async (gen) => {
      const ack = await this.request('sfu.subscribe');
      if (ack.sdp && this.live(gen)) await this.answerOffer(ack.sdp, ack.streams, gen);
    });
  }

  /** sfu.offer: Janus renegotiated the subscription by itself. */
  onOffer(frame) {
    return this.queue((gen) => this.answerOffer(frame.sdp, frame.streams, gen));
  }

  async answerOffer(sdp, streams, gen) {
    if (!this.sub) this.sub = this.newSubscription(gen);
    const pc = this.sub;
    this.streams = Array.isArray(streams) ? streams : [];
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    if (!this.live(gen)) return;
    await this.request('sfu.answer', { sdp: pc.localDescription.sdp });
    this.subscribed = true;
    for (const c of this.subPending.splice(0)) this.trickle('subscribe', c, gen);
    this.rebuildStreams();
    this.calls.emit('sfu-streams');
  }

  newSubscription(gen) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    this.subscribed = false;
    this.subPending = [];
    pc.onicecandidate = ({ candidate }) => {
      const c = candidate ? candidate.toJSON() : null;
      if (this.subscribed) this.trickle('subscribe', c, gen);
      else this.subPending.push(c);
    };
    pc.ontrack = () => { if (this.live(gen)) this.rebuildStreams(); };
    pc.onconnectionstatechange = () => {
      if (!this.live(gen)) return;
      for (const peerId of this.remote.keys()) this.calls.emit('peer-state', peerId);
    };
    return pc;
  }

  /** Each participant's MediaStream from the subscription's tracks (by mid); a new object when its tracks change. */
  rebuildStreams() {
    const pc = this.sub;
    if (!pc) return;
    const byMid = new Map(pc.getTransceivers().filter((t) => t.mid != null).map((t) => [t.mid, t]));
    const tracks = new Map(); // peer_id → [track]
    for (const s of this.streams) {
      const tr = byMid.get(String(s.mid));
      if (!s.peer_id || !tr || tr.currentDirection === 'inactive') continue;
      const key = s.peer_id;
      if (!tracks.has(key)) tracks.set(key, []);
      tracks.get(key).push(tr.receiver.track);
    }
    for (const [peerId, list] of tracks) {
      const old = this.remote.get(peerId);
      const same = old && old.getTracks().length === list.length && list.every((t) => old.getTracks().includes(t));
      if (same) continue;
      this.remote.set(peerId, new MediaStream(list));
      this.calls.emit('stream', peerId);
    }
    for (const peerId of [...this.remote.keys()]) {
      if (!tracks.has(peerId)) {
        this.remote.delete(peerId);
        this.calls.emit('stream', peerId);
      }
    }
  }

  /** The subscription's video m-line of a participant ('screen' streams are `<peer_id>:screen`). */
  videoMid(peerId) {
    return this.streams.find((s) => s.peer_id === peerId && s.type === 'video')?.mid ?? null;
  }

  /**
   * What a tile wants of a participant's video: `layer` (0 smallest … 2 largest simulcast
   * layer) and `send` (false: no video at all, the tile shows the avatar). Sent as
   * sfu.configure only when it changes.
   */
  want(peerId, { layer, send }) {
    const mid = this.videoMid(peerId);
    if (mid == null || !this.subscribed) return;
    const prev = this.wanted.get(mid);
    // (Janus may give a freed mid to another participant's stream: compare whose it was too.)
    if (prev && prev.peerId === peerId && prev.substream === layer && prev.send === send) return;
    this.wanted.set(mid, { peerId, substream: layer, send });
    const gen = this.generation;
    this.request('sfu.configure', { mid: String(mid), substream: layer, send })
      .catch((err) => { this.wanted.delete(mid); this.failed('configure', err, gen); });
  }

  // ---- views ----------------------------------------------------------------------------------

  streamOf(peerId) {
    return this.remote.get(peerId) || null;
  }

  stateOf(peerId) {
    if (!this.remote.has(peerId)) return 'connecting';
    return this.sub?.connectionState || 'new';
  }

  /** Janus restarted: new connections, same call. */
  restart() {
    this.stop();
    this.start(this.iceServers);
  }

  /** The socket dropped: keep every connection as it is until we rejoin (resume or stop). */
  hold() {
    this.held = true;
    this.chain = Promise.resolve();
  }

  /**
   * Rejoined as the same participant: `kept` ({publish, screen}) says which of our publishers
   * Janus kept (the others publish again); the subscription is made anew.
   */
  resume(kept, iceServers) {
    this.held = false;
    if (Array.isArray(iceServers)) this.iceServers = iceServers;
    const gen = this.generation;
    if (!kept.publish) {
      this.pub?.pc.close();
      this.pub = null;
      this.publish(gen).catch((err) => this.failed('publish', err, gen));
    }
    if (!kept.screen && this.screenPub) {
      this.screenPub.pc.close();
      this.screenPub = null;
      if (this.calls.devices.local.screen) this.startScreen();
    }
    this.oldSub?.close();
    this.oldSub = this.sub;
    this.sub = null;
    this.wanted.clear();
    // (Nobody to subscribe to, or a failure: the old one goes all the same.)
    this.subscribe().finally(() => {
      this.oldSub?.close();
      this.oldSub = null;
    });
  }

  stop() {
    this.generation += 1;
    this.held = false;
    for (const slot of [this.pub, this.screenPub]) slot?.pc.close();
    this.sub?.close();
    this.oldSub?.close();
    this.pub = this.screenPub = this.sub = this.oldSub = null;
    this.streams = [];
    this.wanted.clear();
    const had = [...this.remote.keys()];
    this.remote.clear();
    for (const peerId of had) this.calls.emit('stream', peerId);
    this.chain = Promise.resolve();
  }
}
