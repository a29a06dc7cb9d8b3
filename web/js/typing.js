// Outgoing typing notices, throttled, with active:false when idle or on send.
//
// Outgoing typing notices: "active:true" at most once per THROTTLE_MS while the user types,
// "active:false" after IDLE_MS without a keystroke, on send, or when switching rooms.

const THROTTLE_MS = 2500;
const IDLE_MS = 3000;

export class TypingNotifier {
  constructor(send) {
    this.send = send; // (room, active) => void
    this.room = null;
    this.lastSentAt = 0;
    this.idleTimer = null;
  }

  /** Call on every keystroke in the composer of `room`. */
  input(room) {
    if (this.room && this.room !== room) this.stop();
    const now = Date.now();
    if (this.room !== room || now - this.lastSentAt > THROTTLE_MS) {
      this.room = room;
      this.lastSentAt = now;
      this.send(room, true);
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), IDLE_MS);
  }

  /** The user stopped typing (idle, sent, left the room). */
  stop() {
    clearTimeout(this.idleTimer);
    if (!this.room) return;
    const room = this.room;
    this.room = null;
    this.lastSentAt = 0;
    this.send(room, false);
  }
}
