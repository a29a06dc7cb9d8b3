// This tab's camera, microphone and screen in a call: getUserMedia, mute and camera off, screen sharing, the preview.
//
// Mute is `track.enabled` (plus call.media, sent by the session); the screen replaces the
// camera in every connection (`replaceTrack`) and the camera comes back when sharing stops.
// The devices opened are the remembered choices (device-prefs.js), or the stream the device
// check handed over (adopt()); switchDevice() changes one during the call, on every connection.

import * as text from './notices.js';
import { loadPrefs, savePrefs, constraintsFor, useSpeaker } from './device-prefs.js';

export class LocalMedia {
  /** `calls`: the CallManager (session.js): its state, notices, events and connections. */
  constructor(calls) {
    this.calls = calls;
    this.local = { stream: null, audio: null, camera: null, screen: null };
    this.preview = null; // MediaStream of what we send as video (camera or screen)
    this.mic = false;
    this.camera = false;
    this.prepared = null; // {stream, missing} the device check opened, for the next acquire()
  }

  /** The device check's stream (its tracks are ours now): the next acquire() uses it. */
  adopt(stream, missing = []) {
    this.discardPrepared();
    this.prepared = { stream, missing };
  }

  /** Stop an adopted stream no call took (the start or join failed before acquire()). */
  discardPrepared() {
    this.prepared?.stream?.getTracks().forEach((t) => t.stop());
    this.prepared = null;
  }

  /**
   * Camera and microphone for a call being joined (whichever the browser grants): the device
   * check's stream, else the remembered devices. Joins muted / camera off as remembered.
   */
  async acquire() {
    if (this.local.audio || this.local.camera) return;
    const md = navigator.mediaDevices;
    const prefs = loadPrefs();
    let opened = this.prepared;
    this.prepared = null;
    if (!opened && !md?.getUserMedia) {
      this.calls.notice({ text: text.NO_MEDIA_API, kind: 'warn' });
      return;
    }
    if (!opened) opened = await openDevices(md, prefs);
    const { stream, missing } = opened;
    if (this.calls.state !== 'joining') {
      stream?.getTracks().forEach((t) => t.stop());
      return;
    }
    this.local.stream = stream || new MediaStream();
    this.local.audio = stream?.getAudioTracks()[0] || null;
    this.local.camera = stream?.getVideoTracks()[0] || null;
    this.mic = !!this.local.audio && !prefs.micOff;
    this.camera = !!this.local.camera && !prefs.cameraOff;
    if (this.local.audio) this.local.audio.enabled = this.mic;
    if (this.local.camera) this.local.camera.enabled = this.camera;
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

  /**
   * Use another camera ('videoinput'), microphone ('audioinput') or speaker ('audiooutput')
   * during the call: the new track replaces the old one on every sending connection (mesh
   * peers; an SFU call's publish connection) and in the preview, keeping mute and camera-off.
   * The choice is remembered. Resolves true once switched; false (with a notice) if the
   * device cannot be opened.
   */
  async switchDevice(kind, deviceId) {
    if (kind === 'audiooutput') return this.setSpeaker(deviceId);
    const audio = kind === 'audioinput';
    let track;
    try {
      const s = await navigator.mediaDevices.getUserMedia({ [audio ? 'audio' : 'video']: constraintsFor(audio ? 'audio' : 'video', deviceId) });
      track = s.getTracks()[0];
    } catch (err) {
      this.calls.notice({ text: text.deviceSwitchFailed(audio ? 'microphone' : 'camera', err), kind: 'error' });
      return false;
    }
    savePrefs(audio ? { mic: deviceId } : { camera: deviceId });
    if (!this.calls.inCall || !this.local.stream) { // left, or still opening the devices
      track.stop();
      return true;
    }
    const old = audio ? this.local.audio : this.local.camera;
    track.enabled = audio ? this.mic : this.camera;
    if (audio) this.local.audio = track;
    else this.local.camera = track;
    if (old) this.local.stream.removeTrack(old);
    this.local.stream.addTrack(track);
    const mediaKind = audio ? 'audio' : 'video';
    // While sharing, the screen is the mesh's video: the new camera comes back with stopScreen().
    if (audio || !this.local.screen) await this.calls.mesh.replaceTrack(mediaKind, track);
    await this.calls.sfu.replaceTrack(mediaKind, track);
    old?.stop();
    this.updatePreview();
    return true;
  }

  /** Play the call's sound on speaker `deviceId` (where the browser can choose; remembered). */
  async setSpeaker(deviceId) {
    savePrefs({ speaker: deviceId });
    const media = document.querySelectorAll('[data-testid=remote-video], audio'); // what plays the others
    await Promise.all([...media].map((el) => useSpeaker(el, deviceId)));
    this.calls.emit('local');
    return true;
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

/**
 * getUserMedia for both devices — the remembered ones (`prefs`), else the defaults — and failing
 * that each alone: {stream (or null), missing: device names}. The device check opens its
 * preview with this too.
 */
export async function openDevices(md, prefs = loadPrefs()) {
  const chosen = { audio: constraintsFor('audio', prefs.mic), video: constraintsFor('video', prefs.camera) };
  const plain = { audio: constraintsFor('audio', ''), video: constraintsFor('video', '') };
  const tries = prefs.mic || prefs.camera ? [chosen, plain] : [plain]; // a remembered device may be gone
  for (const constraints of tries) {
    try {
      return { stream: await md.getUserMedia(constraints), missing: [] };
    } catch (err) {
      console.info('getUserMedia (audio+video) failed', err.name);
    }
  }
  const tracks = [];
  const missing = [];
  for (const kind of ['audio', 'video']) {
    let track = null;
    for (const constraints of tries) {
      try {
        track = (await md.getUserMedia({ [kind]: constraints[kind] })).getTracks()[0];
        break;
      } catch {
        // the next try, else missing
      }
    }
    if (track) tracks.push(track);
    else missing.push(kind === 'audio' ? 'microphone' : 'camera');
  }
  return { stream: tracks.length ? new MediaStream(tracks) : null, missing };
}
