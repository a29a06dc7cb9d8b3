// The call's connections: one Peer (peer.js) per remote participant, rtc.* signals routed to them, ICE servers kept fresh.

import * as api from '../api.js';
import { Peer } from './peer.js';

export class Mesh {
  /** `calls`: the CallManager (session.js): session, our peer_id, participants, socket, events. */
  constructor(calls) {
    this.calls = calls;
    this.peers = new Map(); // peer_id → Peer
    this.iceServers = [];
    this.iceTimer = null;
  }

  /** ICE servers from the call.join ack; their TURN credentials expire after `ttlS`. */
  setIceServers(servers, ttlS) {
    this.iceServers = Array.isArray(servers) ? servers : [];
    this.scheduleIceRefresh(ttlS);
  }

  /**
   * TURN credentials in the join ack expire after `ttl_s`: fetch fresh ones (GET
   * /api/ice-servers) before then, for connections made later and for ICE restarts.
   */
  scheduleIceRefresh(ttlS) {
    clearTimeout(this.iceTimer);
    if (!ttlS || ttlS <= 0) return;
    this.iceTimer = setTimeout(async () => {
      if (this.calls.state !== 'live') return;
      try {
        const data = await api.iceServers();
        if (this.calls.state !== 'live' || !Array.isArray(data.ice_servers)) return;
        this.iceServers = data.ice_servers;
        for (const peer of this.peers.values()) peer.setIceServers(this.iceServers);
        this.scheduleIceRefresh(data.ttl_s);
      } catch (err) {
        console.warn('ice-servers refresh failed', err);
        this.scheduleIceRefresh(60);
      }
    }, Math.max(10, ttlS * 0.8) * 1000);
  }

  /** rtc.offer / rtc.answer / rtc.ice from another participant of our session. */
  onSignal(frame) {
    const calls = this.calls;
    if (calls.state !== 'live' || !frame.from || frame.from === calls.peerId) return;
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
    const calls = this.calls;
    const sessionId = calls.session.id;
    peer = new Peer({
      myPeerId: calls.peerId,
      remotePeerId: peerId,
      recorder: !!calls.participants.get(peerId)?.recorder,
      iceServers: this.iceServers,
      local: () => calls.devices.outgoing(),
      signal: (type, fields) => {
        if (calls.state !== 'live' || String(calls.session?.id) !== String(sessionId)) return;
        calls.socket.request(type, { session: sessionId, to: peerId, ...fields }).catch((err) => {
          // forbidden: the other side left in the meantime (participant_left follows).
          if (err.code !== 'forbidden') console.warn(`${type} to ${peerId} failed: ${err.code}`);
        });
      },
      onStream: () => calls.emit('stream', peerId),
      onState: () => calls.emit('peer-state', peerId),
    });
    this.peers.set(peerId, peer);
    if (offerer) peer.startAsOfferer();
    return peer;
  }

  /** Close the connection to one participant (who left). */
  drop(peerId) {
    const peer = this.peers.get(peerId);
    if (peer) {
      peer.close();
      this.peers.delete(peerId);
    }
  }

  closeAll() {
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
  }

  /** Leaving the call: no more ICE refreshes, no connections. */
  stop() {
    clearTimeout(this.iceTimer);
    this.closeAll();
  }

  /** Send `track` as our video on every connection (the screen, or the camera again). */
  replaceVideo(track) {
    return this.replaceTrack('video', track);
  }

  /** Send `track` as our `kind` ('audio' | 'video') on every connection, without renegotiating. */
  async replaceTrack(kind, track) {
    await Promise.all([...this.peers.values()].map((p) => p.replaceTrack(kind, track).catch((err) => console.warn('replaceTrack', err))));
  }

  streamOf(peerId) {
    return this.peers.get(peerId)?.stream || null;
  }

  stateOf(peerId) {
    return this.peers.get(peerId)?.state || 'new';
  }
}
