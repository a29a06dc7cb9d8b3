// The texts of call notices (the banner above the stage): joining, devices, instructors' actions, recording.
//
// A notice is {text, kind: info|warn|error, topic?: call|recording, ...} (see session.js);
// these functions give only the words, so they are written once and read in one place.

export const ENDED = 'The call has ended.';
export const ENDED_WHILE_OFFLINE = 'The call ended while you were offline.';
export const NO_MEDIA_API = 'This browser cannot use a camera or microphone here; you joined to watch and listen.';
export const NO_MICROPHONE = 'No microphone is available to this page.';
export const NO_CAMERA = 'No camera is available to this page.';
export const NO_SCREEN_SHARE = 'This browser cannot share the screen.';
export const RECORDING_UNAVAILABLE = 'Recording is not available on this server yet. The call goes on as usual.';
export const RECORDING_FORBIDDEN = 'Only the room’s instructors can record.';
export const RECORDING_CANCELED = 'The recording was canceled before it started.';
export const RECORDING_READY = 'The recording is ready.';
export const RECORDING_STARTED = 'This call is now being recorded: what you say and show is in the recording.';
export const RECORDING_STOPPED = 'Recording stopped.';

/** Why call.join (or a rejoin) failed. */
export function joinError(err) {
  switch (err?.code) {
    case 'forbidden': return `You cannot join this call: ${err.message}`;
    case 'conflict': return 'This call has already ended.';
    case 'not_found': return 'This call no longer exists.';
    case 'offline':
    case 'disconnected': return 'You are offline; join again once the connection is back.';
    default: return `Could not join the call: ${err?.message || err}`;
  }
}

/** `missing`: 'microphone' and/or 'camera', the devices getUserMedia was refused. */
export function missingDevices(missing) {
  const unseen = missing.length === 2 ? 'see or hear' : missing[0] === 'camera' ? 'see' : 'hear';
  return `No access to your ${missing.join(' or ')} — the others will not ${unseen} you. Check the browser's permissions.`;
}

/** Switching to another `device` ('camera' | 'microphone') during a call failed. */
export function deviceSwitchFailed(device, err) {
  return `Could not switch the ${device}: ${err.message || err.name}. The call keeps the one it had.`;
}

export function screenShareFailed(err) {
  return `Screen sharing failed: ${err.message || err.name}`;
}

export function handFailed(raised, err) {
  return `Could not ${raised ? 'raise' : 'lower'} your hand: ${err.message}`;
}

/** An instructor muted us (`wasOn`) or asked everyone to stay muted. */
export function mutedBy(by, wasOn) {
  return wasOn ? `${by} muted your microphone. Unmute when you want to speak.` : `${by} asked everyone to stay muted.`;
}

/** An SFU call: the instructor muted us at the media router; `allowUnmute`: we may unmute. */
export function mutedByInstructor(allowUnmute) {
  return `The instructor muted you. ${allowUnmute ? 'Unmute when you want to speak.' : 'You can unmute once they allow it.'}`;
}

export const UNMUTE_ALLOWED = 'The instructor allowed you to unmute. Unmute when you want to speak.';
export const MIC_HELD = 'The instructor muted you: you can unmute once they allow it.';

export function handLoweredBy(by) {
  return `${by} lowered your hand.`;
}

/** The instructor changed what students may send (`rules`: {video, screen}; `changed`: which). */
export function permissionsChanged(by, rules, changed) {
  const said = changed.map((k) => (k === 'video'
    ? (rules.video ? 'students may turn their cameras on again' : 'cameras are off for students')
    : (rules.screen ? 'students may share their screens again' : 'screen sharing is off for students')));
  return `${by}: ${said.join('; ')}.`;
}

export const WAITING = 'Waiting for the instructor to let you in…';

export function deniedBy(by) {
  return `${by} did not let you into the call.`;
}

export const CAMERAS_OFF = 'The instructor turned cameras off for students in this call.';
export const SCREENS_OFF = 'The instructor turned screen sharing off for students in this call.';

export function removedBy(by) {
  return `${by} removed you from the call. You cannot rejoin this session.`;
}

export function recordingFailed(reason) {
  return `Recording failed: ${reason || 'no reason given'}`;
}

/** recording.start / recording.stop was refused for another reason than the two above. */
export function recordingActionFailed(type, err) {
  return `Recording could not ${type === 'recording.start' ? 'start' : 'stop'}: ${err.message}`;
}

export function startFailed(err) {
  return `Could not start the call: ${err.message}`;
}

export function endFailed(err) {
  return `Could not end the call: ${err.message}`;
}

/** `what`: 'mute', 'allow' (to unmute) or 'remove' (instructors, from the participant list;
 * `name` 'everyone' for Mute all). */
export function participantActionFailed(what, name, err) {
  if (what === 'allow') return `Could not allow ${name || 'them'} to unmute: ${err.message}`;
  return `Could not ${what} ${name || 'them'}: ${err.message}`;
}
