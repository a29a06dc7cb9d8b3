// The recording of the call this tab is in: its status (recording.* events, the join ack), Record/Stop and Mark.
//
// pending → recording → processing → ready | failed; an older event never undoes a newer
// status. Instructors get a notice when it fails (or is canceled while pending) and when
// it is ready.

import { ACTIVE_STATUSES, STATUS_RANK } from '../recordings.js';
import * as text from './notices.js';

export class CallRecording {
  /** `calls`: the CallManager (session.js): session, socket, notices, events. */
  constructor(calls) {
    this.calls = calls;
    this.current = null;
    this.withdrawn = null; // id of a pending recording we stopped ourselves (its failure is no news)
  }

  get active() {
    return !!this.current && ACTIVE_STATUSES.includes(this.current.status);
  }

  /** The session in the join ack: a late joiner learns of a recording in progress from it. */
  joined(session) {
    if (session.recording) this.apply(session.recording);
    else if (this.active) this.set(null);
  }

  /** Leaving the call: forget it (no event; the session emits what changed). */
  reset() {
    this.current = null;
    this.withdrawn = null;
  }

  /** recording.start, or recording.stop while pending or recording (instructors). */
  async toggle() {
    const calls = this.calls;
    if (!calls.session) return;
    const type = this.active ? 'recording.stop' : 'recording.start';
    if (type === 'recording.stop' && this.current.status === 'pending') this.withdrawn = this.current.id;
    try {
      const data = await calls.socket.request(type, { session: calls.session.id });
      if (data.recording) this.apply(data.recording);
    } catch (err) {
      this.withdrawn = null;
      if (err.code === 'unavailable') {
        calls.notice({ text: text.RECORDING_UNAVAILABLE, kind: 'info' });
      } else if (err.code === 'forbidden') {
        calls.notice({ text: text.RECORDING_FORBIDDEN, kind: 'warn' });
      } else {
        calls.notice({ text: text.recordingActionFailed(type, err), kind: 'error' });
      }
    }
  }

  /** recording.mark {session, label} (instructors, while recording) → the mark. */
  async mark(label) {
    const calls = this.calls;
    if (!calls.session) throw new Error('not in a call');
    const { mark } = await calls.socket.request('recording.mark', { session: calls.session.id, label });
    return mark;
  }

  /** A recording.* event's (or an ack's) recording; ignored unless it is our session's. */
  apply(recording) {
    const calls = this.calls;
    if (!recording?.id || !calls.session || String(recording.session) !== String(calls.session.id)) return;
    const prev = this.current && String(this.current.id) === String(recording.id) ? this.current : null;
    if (prev && STATUS_RANK[recording.status] < STATUS_RANK[prev.status]) return; // older news
    const next = { ...prev, ...recording };
    if (recording.progress === null || recording.progress === undefined) next.progress = prev?.progress ?? null;
    this.set(next);
    if (prev?.status === next.status) return;
    const instructor = calls.isInstructor;
    // Consent: everyone in the call is told, clearly, when recording starts and stops.
    if (next.status === 'recording') calls.notice({ text: text.RECORDING_STARTED, kind: 'warn', topic: 'recording' });
    else if (next.status === 'processing' && prev?.status === 'recording') calls.notice({ text: text.RECORDING_STOPPED, kind: 'info', topic: 'recording' });
    if (next.status === 'failed' && instructor) {
      if (this.withdrawn === next.id) {
        calls.notice({ text: text.RECORDING_CANCELED, kind: 'info', topic: 'recording' });
      } else {
        calls.notice({ text: text.recordingFailed(next.reason), kind: 'error', topic: 'recording' });
      }
    } else if (next.status === 'ready' && instructor) {
      calls.notice({ text: text.RECORDING_READY, kind: 'info', topic: 'recording', recordings: calls.session.room });
    }
  }

  set(recording) {
    this.current = recording;
    this.calls.emit('recording', recording);
  }

  /** recording.marked: an instructor marked a moment of our recording. */
  onMarked(frame) {
    if (!this.current || String(frame.recording) !== String(this.current.id) || !frame.mark) return;
    this.calls.emit('marked', { mark: frame.mark, recording: this.current });
  }
}
