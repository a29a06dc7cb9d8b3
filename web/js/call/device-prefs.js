// The devices chosen for calls — camera, microphone, speaker — and the "join with microphone off /
// camera off / check devices first" choices, remembered per browser (localStorage 'podium.devices').
//
// Device ids are those of enumerateDevices; a remembered one is asked for exactly, and one that
// has gone (unplugged) falls back to the browser's default (devices.js openDevices).

const KEY = 'podium.devices';
const DEFAULTS = { camera: '', mic: '', speaker: '', micOff: false, cameraOff: false, check: true };

export const VIDEO_CONSTRAINTS = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

/** The remembered choices, defaults filled in. */
export function loadPrefs() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) || '{}');
    return { ...DEFAULTS, ...(saved && typeof saved === 'object' ? saved : {}) };
  } catch {
    return { ...DEFAULTS };
  }
}

/** Remember `patch` (some of camera, mic, speaker, micOff, cameraOff, check). */
export function savePrefs(patch) {
  try {
    localStorage.setItem(KEY, JSON.stringify({ ...loadPrefs(), ...patch }));
  } catch (err) {
    console.warn('device choices not saved', err.name); // private mode or a full quota: this call still uses them
  }
}

/** getUserMedia constraints of one kind ('audio' | 'video') for device `id` ('' = the default). */
export function constraintsFor(kind, id) {
  // deviceId exact: as an `ideal` it loses to the ideal resolution when the devices' formats differ.
  const device = id ? { deviceId: { exact: id } } : {};
  return kind === 'audio' ? (id ? device : true) : { ...VIDEO_CONSTRAINTS, ...device };
}

/** Does this browser let a page choose where sound plays (HTMLMediaElement.setSinkId)? */
export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/** Play `el`'s sound on speaker `id` ('' = the default) where the browser allows choosing. */
export function useSpeaker(el, id = loadPrefs().speaker) {
  if (!canChooseSpeaker() || el.sinkId === (id || '')) return Promise.resolve();
  return el.setSinkId(id || '').catch((err) => console.warn('setSinkId', err.name));
}

/** The devices there are: {cameras, mics, speakers}, each [{id, label}] (labels once permission is granted). */
export async function listDevices() {
  const all = await navigator.mediaDevices.enumerateDevices();
  const of = (kind, noun) => all.filter((d) => d.kind === kind && d.deviceId)
    .map((d, i) => ({ id: d.deviceId, label: d.label || `${noun} ${i + 1}` }));
  return { cameras: of('videoinput', 'Camera'), mics: of('audioinput', 'Microphone'), speakers: of('audiooutput', 'Speaker') };
}

/** The device id a live track comes from ('' if unknown). */
export function deviceOf(track) {
  return track?.getSettings?.().deviceId || '';
}
