// One RTCPeerConnection to one remote participant, with perfect negotiation and ICE restart.
//
// One RTCPeerConnection to one remote participant (the call is a mesh), negotiated with the
// "perfect negotiation" pattern so that two sides offering at once (glare) never breaks it:
//
// * The polite side (the greater peer_id, as in tests/rtcpeer.py) yields: an offer arriving
//   while it is making its own rolls its offer back (setRemoteDescription does the rollback)
//   and answers. The impolite side ignores an offer that collides with its own; the polite
//   side will answer that one.
// * Every offer carries a fresh `negotiation_id`; the answer carries the offer's id back, and
//   an answer for an offer we no longer wait for is stale and ignored.
// * `onnegotiationneeded` → offer. Who offers first: the newcomer (`offerer: true`) adds
//   transceivers at once; the side already present creates the connection when the first
//   offer arrives and attaches its tracks to the transceivers that offer created. Nobody
//   ever offers to a recorder; its (receive-only) offers are answered.
// * ICE candidates go out as `rtc.ice`, with `candidate: null` once gathering is complete.
//
// Incoming signals are applied one at a time, in arrival order.

const KINDS = ['audio', 'video'];

let negotiationCounter = 0;
const newNegotiationId = (peerId) => `${peerId}-${Date.now().toString(36)}-${++negotiationCounter}`;

export class Peer {
  /**
   * @param {object} o
   * @param {string} o.myPeerId
   * @param {string} o.remotePeerId
   * @param {boolean} o.recorder the remote side is the recorder: never offer to it
   * @param {RTCIceServer[]} o.iceServers
   * @param {(type: string, fields: object) => void} o.signal sends rtc.offer/answer/ice to the remote
   * @param {() => {audio: MediaStreamTrack|null, video: MediaStreamTrack|null, stream: MediaStream|null}} o.local
   * @param {(stream: MediaStream) => void} o.onStream the remote media changed
   * @param {(state: string) => void} o.onState connection state changed
   */
  constructor({ myPeerId, remotePeerId, recorder = false, iceServers = [], signal, local, onStream, onState }) {
    this.myPeerId = myPeerId;
    this.remotePeerId = remotePeerId;
    this.recorder = recorder;
    this.polite = myPeerId > remotePeerId;
    this.signal = signal;
    this.local = local;
    this.onStream = onStream;
    this.onState = onState;
    this.closed = false;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.pendingOfferId = null; // negotiation_id of our offer awaiting its answer
    this.negotiationId = null; // the negotiation our ICE candidates belong to
    this.queue = Promise.resolve();
    this.stream = new MediaStream();

    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    pc.onnegotiationneeded = () => this.offer();
    pc.onicecandidate = ({ candidate }) => {
      if (this.closed) return;
      this.signal('rtc.ice', { candidate: candidate ? candidate.toJSON() : null, negotiation_id: this.negotiationId });
    };
    pc.ontrack = ({ track }) => this.addRemoteTrack(track);
    pc.onconnectionstatechange = () => {
      if (this.closed) return;
      const state = pc.connectionState;
      // A failed connection (network change) gets an ICE restart; the offering side of the
      // restart is whoever notices, except towards a recorder, which restarts itself.
      if (state === 'failed' && !this.recorder) pc.restartIce();
      this.onState(state);
    };
  }

  get state() {
    return this.pc.connectionState;
  }

  /** The newcomer's side: one transceiver per kind, sending what we have. Fires negotiationneeded. */
  startAsOfferer() {
    const { stream } = this.local();
    for (const kind of KINDS) {
      const track = this.local()[kind];
      this.pc.addTransceiver(track || kind, { direction: track ? 'sendrecv' : 'recvonly', streams: stream ? [stream] : [] });
    }
  }

  async offer() {
    if (this.closed || this.recorder) return;
    try {
      this.makingOffer = true;
      const id = newNegotiationId(this.myPeerId);
      this.negotiationId = id; // before gathering starts, so every candidate carries it
      await this.pc.setLocalDescription();
      if (this.closed || this.pc.signalingState !== 'have-local-offer') return;
      this.pendingOfferId = id;
      this.signal('rtc.offer', { sdp: this.pc.localDescription.sdp, negotiation_id: id });
    } catch (err) {
      if (!this.closed) console.warn(`peer ${this.remotePeerId}: cannot make an offer`, err);
    } finally {
      this.makingOffer = false;
    }
  }

  /** An rtc.offer / rtc.answer / rtc.ice frame from this peer. */
  handle(frame) {
    this.queue = this.queue.then(() => this.apply(frame)).catch((err) => {
      if (!this.closed) console.warn(`peer ${this.remotePeerId}: ${frame.type} failed`, err);
    });
    return this.queue;
  }

  async apply(frame) {
    if (this.closed) return;
    const pc = this.pc;
    if (frame.type === 'rtc.ice') {
      if (frame.candidate === null || frame.candidate === undefined) {
        // End of candidates; harmless if it belongs to an offer we ignored.
        await pc.addIceCandidate().catch(() => {});
        return;
      }
      try {
        await pc.addIceCandidate(typeof frame.candidate === 'string' ? { candidate: frame.candidate, sdpMid: '0' } : frame.candidate);
      } catch (err) {
        // Candidates of an offer we ignored in a collision cannot be applied; that is expected.
        if (!this.ignoreOffer) throw err;
      }
      return;
    }
    if (frame.type === 'rtc.answer') {
      if (pc.signalingState !== 'have-local-offer' || (frame.negotiation_id != null && frame.negotiation_id !== this.pendingOfferId)) {
        console.info(`peer ${this.remotePeerId}: ignoring a stale answer (${frame.negotiation_id})`);
        return;
      }
      await pc.setRemoteDescription({ type: 'answer', sdp: frame.sdp });
      this.pendingOfferId = null;
      return;
    }
    if (frame.type !== 'rtc.offer') return;
    const collision = this.makingOffer || pc.signalingState !== 'stable';
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) {
      console.info(`peer ${this.remotePeerId}: offers collided; ours wins (impolite side)`);
      return;
    }
    // Polite side in a collision: this rolls our own offer back first.
    await pc.setRemoteDescription({ type: 'offer', sdp: frame.sdp });
    this.pendingOfferId = null;
    this.negotiationId = frame.negotiation_id ?? null;
    this.attachLocal();
    await pc.setLocalDescription();
    if (this.closed) return;
    this.signal('rtc.answer', { sdp: pc.localDescription.sdp, negotiation_id: frame.negotiation_id ?? null });
  }

  /**
   * Put our tracks on the transceivers a remote offer created (one per kind) and make them
   * send; the answer then carries our media without a second round of negotiation.
   */
  attachLocal() {
    const local = this.local();
    for (const kind of KINDS) {
      const tr = this.pc.getTransceivers().find((t) => !t.stopped && t.receiver.track?.kind === kind);
      if (!tr) continue;
      const track = local[kind];
      if (track && tr.sender.track !== track) {
        tr.sender.replaceTrack(track).catch((err) => console.warn(`peer ${this.remotePeerId}: replaceTrack`, err));
        if (local.stream && tr.sender.setStreams) tr.sender.setStreams(local.stream);
      }
      const want = track ? 'sendrecv' : 'recvonly';
      if (tr.direction !== want && !(track && tr.direction === 'sendonly')) tr.direction = want;
    }
  }

  /** Fresh STUN/TURN entries (expiring TURN credentials) for later gathering and ICE restarts. */
  setIceServers(iceServers) {
    if (this.closed) return;
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    } catch (err) {
      console.warn(`peer ${this.remotePeerId}: cannot update ICE servers`, err);
    }
  }

  /** Swap the outgoing track of one kind (camera ↔ screen share) without renegotiating. */
  async replaceTrack(kind, track) {
    if (this.closed) return;
    for (const tr of this.pc.getTransceivers()) {
      if (tr.stopped || tr.receiver.track?.kind !== kind) continue;
      if (tr.sender.track === track) continue;
      if (!tr.direction.includes('send') && track && !this.recorder) tr.direction = 'sendrecv'; // renegotiates
      await tr.sender.replaceTrack(track);
      break;
    }
  }

  addRemoteTrack(track) {
    if (this.stream.getTracks().includes(track)) return;
    // A fresh MediaStream each time so a <video> bound to the old one reloads with both tracks.
    const tracks = this.stream.getTracks().filter((t) => t.kind !== track.kind || t.readyState === 'live');
    this.stream = new MediaStream([...tracks.filter((t) => t.kind !== track.kind), track]);
    track.addEventListener('ended', () => {
      if (this.closed || !this.stream.getTracks().includes(track)) return;
      this.stream = new MediaStream(this.stream.getTracks().filter((t) => t !== track));
      this.onStream(this.stream);
    });
    this.onStream(this.stream);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    try {
      this.pc.close();
    } catch (err) {
      console.warn('peer close', err);
    }
  }
}
