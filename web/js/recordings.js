// Recordings of a room’s calls (app.recordings): listed, kept current by recording.* events, fetched again before links expire.
//
// Recordings of live calls (app.recordings; PROTOCOL §2.2, §3, docs/RECORDING.md): each room's
// recordings as the server last described them (GET /api/rooms/{id}/recordings,
// GET /api/recordings/{id}), kept current by the socket's recording.* events. Asset links are
// signed and expire (`expires_at`, on the server's clock): `fresh()` fetches the recording
// again when one is about to, so a download never starts with a dead link.
//
// Events (via on()):
//   'change'  {room, id}            one recording changed (status, progress, assets) or appeared
//   'list'    {room}                a room's list was (re)loaded
//   'marked'  {room, recording, mark}

import * as api from './api.js';
import { Emitter } from './emitter.js';
import { linkStaleAt } from './signed-links.js';

// Status order: an event older than what we know (a progress frame after ready) never undoes it.
export const STATUS_RANK = { pending: 0, recording: 1, processing: 2, ready: 3, failed: 3 };
// A link with less than this left is fetched again before use (clock skew, a slow click).
const LINK_MARGIN_MS = 60_000;

export const ACTIVE_STATUSES = ['pending', 'recording'];

/** 75.4 → "1:15"; 3725 → "1:02:05". */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** The user id in a participant asset's name (`participant-<user id>-<n>.mkv`), or null. */
export function participantOf(asset) {
  const m = /^participant-([^-]+)-(\d+)\./.exec(asset?.name || '');
  return m ? { userId: m[1], n: Number(m[2]) } : null;
}

export class RecordingService extends Emitter {
  /** `serverOffsetMs()`: server clock minus ours (from `hello`), so expiry compares on our clock. */
  constructor({ socket, serverOffsetMs = () => 0 }) {
    super();
    this.serverOffsetMs = serverOffsetMs;
    this.rooms = new Map(); // room id → Set of recording ids, once listed
    this.byId = new Map(); // recording id → recording (listed or heard of), the latest we know
    this.fetching = new Map(); // recording id → Promise of GET /api/recordings/{id}
    this.offs = [];
    const on = (type, fn) => this.offs.push(socket.on(type, fn));
    on('recording.started', (f) => this.apply(f.recording));
    on('recording.stopped', (f) => this.apply(f.recording));
    on('recording.progress', (f) => this.apply({ ...f.recording, progress: f.percent ?? f.recording?.progress }));
    // The events carry no assets (and students see assets only once ready): fetch the
    // recording again, with its links, when it settles (ready or failed).
    on('recording.ready', (f) => { this.apply(f.recording); this.refreshKnown(f.recording); });
    on('recording.failed', (f) => {
      this.apply({ ...f.recording, reason: f.recording?.reason || f.reason });
      this.refreshKnown(f.recording);
    });
    // Renamed (its links now carry the new download names) or deleted by an instructor.
    on('recording.updated', (f) => { if (this.byId.has(String(f.recording?.id))) this.refresh(f.recording.id).catch(() => {}); });
    on('recording.deleted', (f) => this.forget(f.recording));
    on('recording.marked', (f) => {
      const rec = this.byId.get(String(f.recording));
      this.emit('marked', { room: rec?.room || null, recording: String(f.recording), mark: f.mark });
    });
  }

  destroy() {
    this.offs.forEach((off) => off());
    this.rooms.clear();
    this.byId.clear();
  }

  /** A recording deleted (by an instructor, or the retention sweep). */
  forget(rec) {
    const id = String(rec?.id);
    this.byId.delete(id);
    const room = String(rec?.room);
    this.rooms.get(room)?.delete(id);
    this.emit('list', { room });
  }

  /** PATCH /api/recordings/{id} {title} (instructors). */
  async rename(id, title) {
    const { recording } = await api.request('PATCH', `/api/recordings/${id}`, { title });
    const rec = this.store(recording, { full: true });
    this.emit('change', { room: rec.room, id: rec.id });
    return rec;
  }

  /** DELETE /api/recordings/{id} (instructors; finished recordings). */
  async remove(rec) {
    await api.request('DELETE', `/api/recordings/${rec.id}`);
    this.forget(rec);
  }

  /** The room's recordings we know, newest first. */
  list(roomId) {
    const ids = this.rooms.get(String(roomId));
    if (!ids) return null;
    return [...ids].map((id) => this.byId.get(id)).filter(Boolean).sort((a, b) => (b.requested_at || '').localeCompare(a.requested_at || '') || Number(b.id) - Number(a.id));
  }

  get(id) {
    return this.byId.get(String(id)) || null;
  }

  /** GET /api/rooms/{id}/recordings: the list, with fresh links. */
  async load(roomId) {
    const room = String(roomId);
    const { recordings = [] } = await api.roomRecordings(room);
    const ids = new Set(recordings.map((r) => this.store(r, { full: true }).id));
    // A recording first heard of while the list was on its way is newer than the list.
    for (const rec of this.byId.values()) if (rec.room === room && rec.heardAt > 0) ids.add(rec.id);
    this.rooms.set(room, ids);
    this.emit('list', { room });
    return this.list(room);
  }

  /** GET /api/recordings/{id} (one request at a time per recording). */
  refresh(id) {
    const key = String(id);
    let p = this.fetching.get(key);
    if (!p) {
      p = api.getRecording(key).then(({ recording }) => {
        const rec = this.store(recording, { full: true });
        this.rooms.get(rec.room)?.add(rec.id);
        this.emit('change', { room: rec.room, id: rec.id });
        return rec;
      }).finally(() => this.fetching.delete(key));
      this.fetching.set(key, p);
    }
    return p;
  }

  /** The recording with links good for a while: fetched again when one is about to expire. */
  async fresh(id) {
    const rec = this.get(id);
    if (rec && !this.stale(rec)) return rec;
    return this.refresh(id);
  }

  /** Does any of its links expire within the margin? */
  stale(rec) {
    const at = this.staleAt(rec);
    return at !== null && Date.now() >= at;
  }

  /** When (our clock, ms) its first link becomes stale; null without links. */
  staleAt(rec) {
    let first = null;
    for (const a of rec?.assets || []) {
      const at = linkStaleAt(a.expires_at, { serverOffsetMs: this.serverOffsetMs(), issuedAt: rec.fetchedAt || null, marginMs: LINK_MARGIN_MS });
      if (at !== null) first = first === null ? at : Math.min(first, at);
    }
    return first;
  }

  // ---- internals ------------------------------------------------------------------------------

  /** An event's recording: merged into what we know, then announced. */
  apply(wire) {
    if (!wire?.id) return;
    const rec = this.store(wire, { full: false });
    this.rooms.get(rec.room)?.add(rec.id);
    this.emit('change', { room: rec.room, id: rec.id });
  }

  refreshKnown(wire) {
    // Only rooms someone looks at (listed) need the links now; the panel lists when opened.
    if (!wire?.id || !this.rooms.has(String(wire.room))) return;
    // A fetch already on its way may have left before the change: ask again after it.
    const inFlight = this.fetching.get(String(wire.id));
    (inFlight ? inFlight.catch(() => {}).then(() => this.refresh(wire.id)) : this.refresh(wire.id))
      .catch((err) => console.warn(`recording ${wire.id}: cannot refresh`, err.code));
  }

  store(wire, { full }) {
    const id = String(wire.id);
    const prev = this.byId.get(id);
    let rec;
    if (prev && STATUS_RANK[wire.status] < STATUS_RANK[prev.status]) {
      rec = prev; // stale news
    } else {
      rec = { ...prev, ...wire, id, room: String(wire.room ?? prev?.room ?? '') };
      // Events carry no assets: keep the ones a fetch gave us.
      if (!full && !(wire.assets || []).length) rec.assets = prev?.assets || [];
      if (wire.progress === null || wire.progress === undefined) rec.progress = rec.status === 'processing' ? (prev?.progress ?? null) : null;
      // The worker's estimate and why it builds the video after the class (issue 15.4): kept while processing.
      for (const key of ['eta_s', 'fallback']) {
        if (wire[key] === null || wire[key] === undefined) rec[key] = rec.status === 'processing' ? (prev?.[key] ?? null) : null;
      }
      rec.heardAt = full ? 0 : Date.now();
      if (full) rec.fetchedAt = Date.now();
    }
    this.byId.set(id, rec);
    return rec;
  }
}
