// Our own presence status (presence.status): the one we chose — online, away or busy — and, while we
// chose online, "away" on our own after a while without keyboard, mouse or touch in any of our tabs.

import { Emitter } from './emitter.js';

export const STATUSES = ['online', 'away', 'busy'];
export const DEFAULT_AWAY_AFTER_S = 300;
// This browser's idle time before "away", in seconds, when set (a shorter one in tests).
const AWAY_AFTER_KEY = 'podium.awayAfterS';
const SHARE_EVERY_MS = 5000; // how often a tab in use tells the others (localStorage) that we are here
const ACTIVITY = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart'];

/** The idle time before automatic away, in ms: localStorage `podium.awayAfterS`, else 5 minutes. */
export function awayAfterMs() {
  const s = Number(localStorage.getItem(AWAY_AFTER_KEY));
  return (Number.isFinite(s) && s > 0 ? s : DEFAULT_AWAY_AFTER_S) * 1000;
}

/**
 * `status`: what others see (`chosen`, or away while idle with online chosen); `auto`: away
 * because idle. Emits 'change' when either changes. The server forgets a status when our last
 * socket closes: it is sent again after every `hello`. The choice is kept per user in this
 * browser and shared by its tabs.
 */
export class MyStatus extends Emitter {
  constructor({ socket, userId, idleMs = awayAfterMs() }) {
    super();
    this.socket = socket;
    this.idleMs = idleMs;
    this.chosenKey = `podium.status.${userId}`;
    this.activityKey = `podium.activity.${userId}`;
    const stored = localStorage.getItem(this.chosenKey);
    this.chosen = STATUSES.includes(stored) ? stored : 'online';
    this.idle = false;
    this.lastActivity = Date.now();
    this.sharedAt = 0;
    this.sent = 'online'; // what the server holds for us: online after each hello
    this.timer = null;
    this.onActivity = () => this.active(Date.now());
    this.onStorage = (ev) => this.fromOtherTab(ev);
    for (const type of ACTIVITY) window.addEventListener(type, this.onActivity, { capture: true, passive: true });
    window.addEventListener('storage', this.onStorage);
    this.offHello = socket.on('hello', () => {
      this.sent = 'online';
      this.push();
    });
    this.schedule();
    this.push();
  }

  get status() {
    if (this.chosen !== 'online') return this.chosen;
    return this.idle ? 'away' : 'online';
  }

  get auto() {
    return this.chosen === 'online' && this.idle;
  }

  /** The user picked a status: it holds until they pick another (online still goes away when idle). */
  choose(status) {
    if (!STATUSES.includes(status)) throw new Error(`unknown status ${status}`);
    this.chosen = status;
    localStorage.setItem(this.chosenKey, status);
    this.active(Date.now());
    this.push();
  }

  /** Activity at time `at` (here or in another tab): no longer idle. */
  active(at, { share = true } = {}) {
    this.lastActivity = Math.max(this.lastActivity, at);
    if (share && at - this.sharedAt >= SHARE_EVERY_MS) {
      this.sharedAt = at;
      localStorage.setItem(this.activityKey, String(at));
    }
    if (this.idle) {
      this.idle = false;
      this.schedule();
      this.push();
    }
  }

  fromOtherTab(ev) {
    if (ev.key === this.activityKey && ev.newValue) this.active(Number(ev.newValue), { share: false });
    if (ev.key === this.chosenKey && STATUSES.includes(ev.newValue) && ev.newValue !== this.chosen) {
      this.chosen = ev.newValue;
      this.push();
    }
  }

  /** Check for idleness when the idle time since the last activity has passed. */
  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (Date.now() - this.lastActivity < this.idleMs) return this.schedule(); // active since
      this.idle = true;
      this.push();
    }, Math.max(0, this.lastActivity + this.idleMs - Date.now()));
  }

  /** Tell the server when what others should see differs from what it holds; emit 'change'. */
  push() {
    this.emit('change', this.status);
    const want = this.status;
    if (want === this.sent || !this.socket.online) return;
    this.sent = want;
    this.socket.request('presence.status', { status: want }).catch((err) => {
      if (this.sent === want) this.sent = null; // unknown: the next change or hello sends again
      console.warn(`presence.status ${want} failed: ${err.code || err.message}`);
    });
  }

  destroy() {
    clearTimeout(this.timer);
    for (const type of ACTIVITY) window.removeEventListener(type, this.onActivity, { capture: true });
    window.removeEventListener('storage', this.onStorage);
    this.offHello();
  }
}
