// Ringing (docs/PROTOCOL-ADDITIONS.md "Ringing"): a call placed to us rings wherever we are in the app — an incoming
// call dialog (views/incoming-call.js) with a ring sound that can be silenced, the tab's title, and a desktop
// notification when the tab is in the background and notifications are allowed. Accept answers and joins; Decline
// tells the caller. The ringing stops on every device once one of them answers. As the caller we hear how it went:
// declined, no answer, busy in another call.

// How long after its `ring_s` a ring we never heard the end of stops by itself.
const EXPIRY_GRACE_S = 3;

export class CallRinging {
  /** `calls`: the CallManager (session.js); emits 'ringing' when the incoming call changes. */
  constructor(calls) {
    this.calls = calls;
    this.incoming = null; // {session, room, caller, expires_at}
    this.silenced = false;
    this.sound = null;
    this.titleTimer = null;
    this.savedTitle = null;
    this.notification = null;
    this.expiry = null; // stops a ring whose end never reached us (a dropped socket, a restarted server)
  }

  /** call.ringing: someone calls us. */
  onRinging(frame) {
    if (this.calls.inCall && String(this.calls.session?.id) === String(frame.session)) return; // already in it
    const again = this.incoming && String(this.incoming.session) === String(frame.session); // after a reconnect
    this.incoming = frame;
    if (!again) this.silenced = false;
    // The server says when the ring ends (call.ring_stopped); if that never arrives, it ends here a little after
    // its time (`ring_s` from now, not `expires_at`, which another clock wrote).
    clearTimeout(this.expiry);
    const ringS = Number(frame.ring_s) > 0 ? Number(frame.ring_s) : 30;
    this.expiry = setTimeout(() => this.onStopped({ session: frame.session, reason: 'missed' }), (ringS + EXPIRY_GRACE_S) * 1000);
    if (again) return; // still ringing here (or silenced): only its end moved
    this.startSound();
    this.flashTitle(`📞 ${frame.caller?.display_name || 'Someone'} is calling…`);
    if (document.hidden && typeof Notification !== 'undefined' && Notification.permission === 'granted') {
      try {
        this.notification = new Notification(`${frame.caller?.display_name || 'Someone'} is calling you`, { body: 'Podium', tag: `call-${frame.session}` });
        this.notification.onclick = () => window.focus();
      } catch (err) {
        console.warn('notification', err);
      }
    }
    this.calls.emit('ringing');
  }

  /** call.ring_stopped: answered on another device, declined, missed or cancelled. */
  onStopped(frame) {
    if (!this.incoming || String(this.incoming.session) !== String(frame.session)) return;
    const caller = this.incoming.caller?.display_name || 'Someone';
    this.stop();
    if (frame.reason === 'missed' || frame.reason === 'cancelled') this.calls.notice({ text: `Missed call from ${caller}.`, kind: 'info' });
  }

  /** As the caller: how our ringing went. */
  onOutcome(frame) {
    const name = frame.display_name || this.calls.nameOfUser(frame.user);
    const text = {
      'call.declined': `${name} declined the call.`,
      'call.no_answer': `No answer from ${name}.`,
      'call.busy': `${name} is in another call.`,
    }[frame.type];
    if (text) this.calls.notice({ text, kind: 'info' });
  }

  /** Accept: the ringing stops everywhere and the caller hears it; the ring, to join (`join`). */
  async accept() {
    const ring = this.incoming;
    if (!ring) return null;
    this.stop();
    await this.calls.socket.request('call.answer', { session: ring.session, accept: true }).catch((err) => console.warn('call.answer', err.code));
    return ring;
  }

  /** Join the call we accepted, in its room. */
  async join(ring) {
    location.hash = `#/rooms/${ring.room}`;
    await this.calls.join({ id: String(ring.session), room: String(ring.room) });
  }

  async decline() {
    const ring = this.incoming;
    if (!ring) return;
    this.stop();
    await this.calls.socket.request('call.answer', { session: ring.session, accept: false }).catch((err) => console.warn('call.answer', err.code));
  }

  silence() {
    this.silenced = true;
    this.stopSound();
    this.calls.emit('ringing');
  }

  /** Instructors of a group or course room: ring the members not in the call. */
  ringMembers() {
    return this.calls.socket.request('call.ring', { session: this.calls.session.id });
  }

  stop() {
    clearTimeout(this.expiry);
    this.expiry = null;
    this.incoming = null;
    this.stopSound();
    this.restoreTitle();
    this.notification?.close();
    this.notification = null;
    this.calls.emit('ringing');
  }

  // ---- the sound and the title ----------------------------------------------------------------

  startSound() {
    this.stopSound();
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      const ctx = new Ctx();
      const gain = ctx.createGain();
      gain.gain.value = 0;
      gain.connect(ctx.destination);
      const osc = ctx.createOscillator();
      osc.frequency.value = 480;
      osc.connect(gain);
      osc.start();
      // Two short tones every two seconds, as phones ring.
      const pattern = () => {
        const t = ctx.currentTime;
        for (const start of [0, 0.5]) {
          gain.gain.setValueAtTime(0.15, t + start);
          gain.gain.setValueAtTime(0, t + start + 0.35);
        }
      };
      pattern();
      this.sound = { ctx, timer: setInterval(pattern, 2000) };
    } catch (err) {
      console.warn('ring sound', err);
    }
  }

  stopSound() {
    if (!this.sound) return;
    clearInterval(this.sound.timer);
    this.sound.ctx.close().catch(() => {});
    this.sound = null;
  }

  get ringingAudibly() {
    return !!this.sound;
  }

  flashTitle(text) {
    this.restoreTitle();
    this.savedTitle = document.title;
    let on = true;
    document.title = text;
    this.titleTimer = setInterval(() => {
      on = !on;
      document.title = on ? text : this.savedTitle;
    }, 1000);
  }

  restoreTitle() {
    if (this.titleTimer) clearInterval(this.titleTimer);
    this.titleTimer = null;
    if (this.savedTitle != null) document.title = this.savedTitle;
    this.savedTitle = null;
  }
}
