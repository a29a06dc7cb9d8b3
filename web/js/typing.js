// Outgoing typing notices, throttled, with active:false when idle.
//
// Outgoing typing notices: "active:true" at most once per THROTTLE_MS while the user types,
// "active:false" after IDLE_MS without a keystroke or when switching rooms. Sending a message
// sends none: its message.new ends the typing for everyone (PROTOCOL-ADDITIONS "Typing"),
// where an active:false sent first cost every member of the room a frame of its own.

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

  /** The user sent a message in `room`: forget the typing there without a notice. */
  sent(room) {
    if (this.room && this.room !== room) {
      this.stop();
      return;
    }
    clearTimeout(this.idleTimer);
    this.room = null;
    this.lastSentAt = 0;
  }

  /** The user stopped typing (idle, left the room, posted files). */
  stop() {
    clearTimeout(this.idleTimer);
    if (!this.room) return;
    const room = this.room;
    this.room = null;
    this.lastSentAt = 0;
    this.send(room, false);
  }
}
