// This tab's camera, microphone and screen in a call: getUserMedia, mute and camera off, screen sharing, the preview.
//
// Mute is `track.enabled` (plus call.media, sent by the session); the screen replaces the
// camera in every connection (`replaceTrack`) and the camera comes back when sharing stops.

import * as text from './notices.js';

const VIDEO_CONSTRAINTS = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

export class LocalMedia {
  /** `calls`: the CallManager (session.js): its state, notices, events and connections. */
  constructor(calls) {
    this.calls = calls;
    this.local = { stream: null, audio: null, camera: null, screen: null };
    this.preview = null; // MediaStream of what we send as video (camera or screen)
    this.mic = false;
    this.camera = false;
  }

  /** Camera and microphone for a call being joined (whichever the browser grants). */
  async acquire() {
    if (this.local.audio || this.local.camera) return;
    const md = navigator.mediaDevices;
    if (!md?.getUserMedia) {
      this.calls.notice({ text: text.NO_MEDIA_API, kind: 'warn' });
      return;
    }
    const { stream, missing } = await openDevices(md);
    if (this.calls.state !== 'joining') {
      stream?.getTracks().forEach((t) => t.stop());
      return;
    }
    this.local.stream = stream || new MediaStream();
    this.local.audio = stream?.getAudioTracks()[0] || null;
    this.local.camera = stream?.getVideoTracks()[0] || null;
    this.mic = !!this.local.audio;
    this.camera = !!this.local.camera;
    this.updatePreview();
    if (missing.length) this.calls.notice({ text: text.missingDevices(missing), kind: 'warn' });
  }

  /** Stop every track (leaving the call). */
  stop() {
    for (const t of [this.local.audio, this.local.camera, this.local.screen]) t?.stop();
    this.local = { stream: null, audio: null, camera: null, screen: null };
    this.preview = null;
  }

  updatePreview() {
    const video = this.local.screen || this.local.camera;
    this.preview = video ? new MediaStream([video]) : null;
    this.calls.emit('local');
  }

  /** What the peers send: the microphone and the camera, or the screen while sharing. */
  outgoing() {
    return { audio: this.local.audio, video: this.local.screen || this.local.camera, stream: this.local.stream };
  }

  /** The `media` of call.join / call.media: what the others receive. */
  state() {
    return { audio: !!this.local.audio && this.mic, video: !!this.local.camera && this.camera, screen: !!this.local.screen };
  }

  setMic(on) {
    if (!this.local.audio) {
      if (on) this.calls.notice({ text: text.NO_MICROPHONE, kind: 'warn' });
      return;
    }
    this.mic = on;
    this.local.audio.enabled = on;
    this.calls.sendMedia({ audio: on });
    this.calls.emit('local');
  }

  setCamera(on) {
    if (!this.local.camera) {
      if (on) this.calls.notice({ text: text.NO_CAMERA, kind: 'warn' });
      return;
    }
    this.camera = on;
    // Disabled, the track sends black frames; the tile shows the avatar (media.video false).
    this.local.camera.enabled = on;
    this.calls.sendMedia({ video: on });
    this.calls.emit('local');
  }

  async toggleScreen() {
    if (this.local.screen) return this.stopScreen();
    if (!navigator.mediaDevices?.getDisplayMedia) {
      this.calls.notice({ text: text.NO_SCREEN_SHARE, kind: 'warn' });
      return;
    }
    let track;
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
      track = stream.getVideoTracks()[0];
    } catch (err) {
      if (err.name !== 'NotAllowedError' && err.name !== 'AbortError') {
        this.calls.notice({ text: text.screenShareFailed(err), kind: 'error' });
      }
      return;
    }
    if (!track || this.calls.state !== 'live') {
      track?.stop();
      return;
    }
    track.contentHint = 'detail';
    track.addEventListener('ended', () => { if (this.local.screen === track) this.stopScreen(); });
    this.local.screen = track;
    await this.calls.mesh.replaceVideo(track);
    this.updatePreview();
    this.calls.sendMedia({ screen: true });
  }

  async stopScreen() {
    const track = this.local.screen;
    if (!track) return;
    this.local.screen = null;
    track.stop();
    await this.calls.mesh.replaceVideo(this.local.camera);
    this.updatePreview();
    this.calls.sendMedia({ screen: false });
  }
}

/** getUserMedia for both devices, else each alone: {stream (or null), missing: device names}. */
async function openDevices(md) {
  const missing = [];
  try {
    return { stream: await md.getUserMedia({ audio: true, video: VIDEO_CONSTRAINTS }), missing };
  } catch (err) {
    console.info('getUserMedia (audio+video) failed, trying each alone', err.name);
  }
  const tracks = [];
  for (const kind of ['audio', 'video']) {
    try {
      const s = await md.getUserMedia(kind === 'audio' ? { audio: true } : { video: VIDEO_CONSTRAINTS });
      tracks.push(...s.getTracks());
    } catch {
      missing.push(kind === 'audio' ? 'microphone' : 'camera');
    }
  }
  return { stream: tracks.length ? new MediaStream(tracks) : null, missing };
}
