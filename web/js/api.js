// HTTP API client: one function per REST endpoint, with the Bearer token, JSON in and out, errors as ApiError.
//
// ApiError(status, code, reason) comes from the server's {"error":{"code","reason"}} body.

const TOKEN_KEY = 'podium.token';

export class ApiError extends Error {
  constructor(status, code, reason) {
    super(reason);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

const CODE_BY_STATUS = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict',
  413: 'too_large', 415: 'unsupported_media_type', 429: 'rate_limited', 503: 'unavailable',
};

let token = localStorage.getItem(TOKEN_KEY);
let unauthorizedHandler = null;

export function getToken() {
  return token;
}

export function setToken(value) {
  token = value;
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

/** Called once when an authenticated request answers 401 (expired or revoked token). */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export async function request(method, path, body, { signal, raw } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (raw) {
    // A file as the whole body (an avatar picture).
    headers['Content-Type'] = raw.type || 'application/octet-stream';
    payload = raw;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, signal });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'unavailable', 'Cannot reach the server. Check your connection.');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    const code = err.code || CODE_BY_STATUS[res.status] || 'internal';
    const error = new ApiError(res.status, code, err.reason || res.statusText || `HTTP ${res.status}`);
    if (res.status === 401 && headers.Authorization && unauthorizedHandler) unauthorizedHandler(error);
    throw error;
  }
  return data || {};
}

const q = (params) => {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, v);
  const s = search.toString();
  return s ? `?${s}` : '';
};
const enc = encodeURIComponent;

// Endpoints, named for what they do. Each returns the decoded JSON body.
export const login = (username, password) => request('POST', '/api/auth/login', { username, password });
export const register = (username, password, display_name) =>
  request('POST', '/api/auth/register', { username, password, display_name });
export const me = () => request('GET', '/api/me');
export const rename = (display_name) => request('PATCH', '/api/me', { display_name });
export const changePassword = (old_password, new_password) =>
  request('POST', '/api/me/password', { old_password, new_password });
export const uploadAvatar = (file) => request('PUT', '/api/me/avatar', undefined, { raw: file });
export const removeAvatar = () => request('DELETE', '/api/me/avatar');
export const listRooms = () => request('GET', '/api/rooms');
export const getRoom = (roomId) => request('GET', `/api/rooms/${enc(roomId)}`);
export const createRoom = ({ kind, name, memberUsernames = [] }) =>
  request('POST', '/api/rooms', { kind, name, members: [], member_usernames: memberUsernames });
export const addMember = (roomId, username, role = 'student') =>
  request('POST', `/api/rooms/${enc(roomId)}/members`, { username, role });
export const removeMember = (roomId, userId) => request('DELETE', `/api/rooms/${enc(roomId)}/members/${enc(userId)}`);
export const searchUsers = (prefix, limit = 8, opts) => request('GET', `/api/users${q({ q: prefix, limit })}`, undefined, opts);
export const messagesBefore = (roomId, before, limit = 50) =>
  request('GET', `/api/rooms/${enc(roomId)}/messages${q({ before, limit })}`);
export const searchMessages = (roomId, query, limit = 30, opts) =>
  request('GET', `/api/rooms/${enc(roomId)}/messages/search${q({ q: query, limit })}`, undefined, opts);
export const roomStatistics = (roomId) => request('GET', `/api/rooms/${enc(roomId)}/statistics`);

// Live calls and attendance (PROTOCOL §3).
export const roomSessions = (roomId, limit) => request('GET', `/api/rooms/${enc(roomId)}/sessions${q({ limit })}`);
export const attendance = (sessionId) => request('GET', `/api/sessions/${enc(sessionId)}/attendance`);
export const iceServers = () => request('GET', '/api/ice-servers');

// Recordings (PROTOCOL §3, docs/RECORDING.md): each asset carries fresh signed links.
export const roomRecordings = (roomId, limit) => request('GET', `/api/rooms/${enc(roomId)}/recordings${q({ limit })}`);
export const getRecording = (recordingId) => request('GET', `/api/recordings/${enc(recordingId)}`);

/** The attendance CSV as a Blob (fetched with the bearer token; a plain link could not send it). */
export async function attendanceCsv(sessionId, tz = Intl.DateTimeFormat().resolvedOptions().timeZone) {
  const headers = { Accept: 'text/csv' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    // Times in our own time zone (named in the CSV's time_zone column).
    res = await fetch(`/api/sessions/${enc(sessionId)}/attendance?format=csv${tz ? `&tz=${encodeURIComponent(tz)}` : ''}`, { headers });
  } catch {
    throw new ApiError(0, 'unavailable', 'Cannot reach the server. Check your connection.');
  }
  if (!res.ok) {
    let err = {};
    try {
      err = (await res.json()).error || {};
    } catch {
      // not JSON
    }
    throw new ApiError(res.status, err.code || CODE_BY_STATUS[res.status] || 'internal', err.reason || `HTTP ${res.status}`);
  }
  return res.blob();
}

// Files (PROTOCOL §3 "Files", docs/FILES.md).
export const getFile = (fileId) => request('GET', `/api/files/${enc(fileId)}`);
export const listFiles = ({ room, folder } = {}) => request('GET', `/api/files${q({ room, folder })}`);
export const fileStatistics = (room) => request('GET', `/api/files/statistics${q({ room })}`);
export const signedUrl = (fileId, disposition, expiresIn) =>
  request('POST', `/api/files/${enc(fileId)}/signed-url`, { disposition, expires_in: expiresIn });

/**
 * POST /api/files with one file, streamed by XMLHttpRequest so the upload reports progress
 * (fetch cannot). The `room` and `folder` fields go before the file part, so the server checks
 * room membership before it stores a byte.
 *
 * Returns {promise, abort}: `promise` resolves to the stored file object, or rejects with an
 * ApiError (status 0 for a network failure, code 'aborted' after abort()). `onProgress(loaded,
 * total)` is called as the body is sent.
 */
export function uploadFile(file, { room = null, folder = '' } = {}, { onProgress } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const form = new FormData();
    if (room) form.append('room', room);
    if (folder) form.append('folder', folder);
    form.append('file', file, file.name);
    xhr.open('POST', '/api/files');
    xhr.responseType = 'text';
    xhr.setRequestHeader('Accept', 'application/json');
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    if (onProgress) {
      xhr.upload.addEventListener('progress', (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size));
    }
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status === 201 || xhr.status === 200) {
        const stored = data?.files?.[0];
        if (stored) resolve(stored);
        else reject(new ApiError(xhr.status, 'internal', 'The server did not return the stored file.'));
        return;
      }
      const err = data?.error || {};
      const error = new ApiError(xhr.status, err.code || CODE_BY_STATUS[xhr.status] || 'internal',
        err.reason || xhr.statusText || `HTTP ${xhr.status}`);
      if (xhr.status === 401 && unauthorizedHandler) unauthorizedHandler(error);
      reject(error);
    });
    // A refused upload (too large, wrong type) is answered before the body is read and the
    // connection closed; the browser may then see only a network error.
    xhr.addEventListener('error', () => reject(new ApiError(0, 'unavailable', 'The upload was interrupted.')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'Upload canceled.')));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
