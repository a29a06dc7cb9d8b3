// An instructor's controls over the others in a call (`calls.moderation`: mute one, mute all,
// remove), and what this tab does when an instructor uses them on us (PROTOCOL §2.2).

import * as text from './notices.js';

export class CallModeration {
  constructor(calls) {
    this.calls = calls;
  }

  /** call.mute: a request in a mesh call; in an SFU call muted at the media router and held
   * (no unmuting) unless `allowUnmute` — which, for a held participant, lifts the hold. */
  async mute(peerId, { allowUnmute = false } = {}) {
    const { calls } = this;
    await calls.socket.request('call.mute', { session: calls.session.id, peer_id: peerId, allow_unmute: allowUnmute });
  }

  /** call.mute {all: true}: every participant but the instructors and the recorder. */
  async muteAll() {
    const { calls } = this;
    await calls.socket.request('call.mute', { session: calls.session.id, all: true });
  }

  async remove(peerId) {
    const { calls } = this;
    await calls.socket.request('call.remove', { session: calls.session.id, peer_id: peerId });
  }

  /** call.mute_requested: an instructor muted us. */
  onMuteRequested(frame) {
    const { calls } = this;
    if (frame.enforced) return this.onMutedByInstructor(frame);
    const by = calls.nameOfUser(frame.by);
    const wasOn = calls.mic;
    calls.setMic(false);
    calls.notice({ text: text.mutedBy(by, wasOn), kind: 'info', muted: true });
  }

  /** SFU call: the media router no longer relays our microphone; unmuting waits for the
   * instructor's allow_unmute (a second call.mute, allow_unmute true, lifts a hold). */
  onMutedByInstructor(frame) {
    const { calls } = this;
    const wasHeld = calls.micHeld;
    calls.self = { ...calls.self, muted_by_instructor: true, may_unmute: !!frame.allow_unmute };
    calls.setMic(false);
    const allowed = wasHeld && frame.allow_unmute;
    calls.notice({ text: allowed ? text.UNMUTE_ALLOWED : text.mutedByInstructor(frame.allow_unmute), kind: 'info', muted: !!frame.allow_unmute });
    calls.emit('participants');
  }

  /** call.removed: an instructor removed us from the call. */
  onRemoved(frame) {
    const { calls } = this;
    const by = calls.nameOfUser(frame.by);
    const room = calls.session.room;
    calls.teardown();
    calls.notice({ text: text.removedBy(by), kind: 'error', room, removed: true });
  }
}
