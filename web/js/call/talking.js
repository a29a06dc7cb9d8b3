// Who is talking in an SFU call (`calls.talking`), from Janus's talking events: the tiles'
// marks and the last-N choice of which tiles to show.

export class TalkingTracker {
  constructor(onChange) {
    this.onChange = onChange; // (peerId) => …, after every change
    this.since = new Map(); // peer_id → when it last started talking (talking now)
    this.lastSpoke = new Map(); // peer_id → when it was last heard starting or stopping
  }

  /** sfu.talking {peer_id, talking}: Janus heard someone start or stop talking. */
  onFrame(frame) {
    if (!frame.peer_id) return;
    if (frame.talking) this.since.set(frame.peer_id, Date.now());
    else this.since.delete(frame.peer_id);
    this.lastSpoke.set(frame.peer_id, Date.now());
    this.onChange(frame.peer_id);
  }

  /** Is this participant talking now? */
  isTalking(peerId) {
    return this.since.has(peerId);
  }

  /** When this participant last talked (ms), 0 if never heard. */
  lastSpokeAt(peerId) {
    return this.since.has(peerId) ? Date.now() : (this.lastSpoke.get(peerId) || 0);
  }

  drop(peerId) {
    this.since.delete(peerId);
  }

  /** The call ended or the socket dropped: nobody is known to be talking. */
  clear() {
    this.since.clear();
  }
}
