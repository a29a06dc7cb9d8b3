// HTTP API client: JSON in/out, Bearer token, errors as ApiError(status, code, reason)
// from the server's {"error":{"code","reason"}} body.

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
  413: 'too_large', 415: 'bad_request', 429: 'rate_limited', 503: 'unavailable',
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

export async function request(method, path, body, { signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
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

// Live calls and attendance (PROTOCOL §3).
export const roomSessions = (roomId, limit) => request('GET', `/api/rooms/${enc(roomId)}/sessions${q({ limit })}`);
export const attendance = (sessionId) => request('GET', `/api/sessions/${enc(sessionId)}/attendance`);
export const iceServers = () => request('GET', '/api/ice-servers');

/** The attendance CSV as a Blob (fetched with the bearer token; a plain link could not send it). */
export async function attendanceCsv(sessionId) {
  const headers = { Accept: 'text/csv' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(`/api/sessions/${enc(sessionId)}/attendance?format=csv`, { headers });
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
