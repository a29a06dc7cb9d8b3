// File info and signed download links (app.files), size formatting and upload error texts.
//
// File metadata and signed download links (app.files). Messages carry only a `file_id`, so the
// file's name, size and category come from GET /api/files/{id} (cached per id, fetches shared).
// Signed links (POST /api/files/{id}/signed-url) are cached per file and disposition until
// shortly before they expire, then fetched again; `invalidate` drops one that stopped working
// (a media element that failed mid-play, a file renamed or deleted).

import * as api from './api.js';
import { linkStaleAt } from './signed-links.js';

// Inline links back <img>/<video>/<audio> elements, which fetch ranges for as long as they
// play: a longer life means fewer refreshes mid-play. Download links are used at once.
export const LINK_TTL_S = { inline: 900, attachment: 300 };
// A link with less than this left (or a quarter of its life, when the server gives short
// ones) is refreshed before use: covers clock skew and a slow click.
const REFRESH_MARGIN_MS = 30_000;

const UNITS = ['bytes', 'KB', 'MB', 'GB', 'TB'];

/** 1500 → "1.5 KB" (powers of 1000, like the server's limits: FILE_MAX_MB_* are decimal). */
export function formatSize(bytes) {
  let n = Number(bytes) || 0;
  let u = 0;
  while (n >= 1000 && u < UNITS.length - 1) {
    n /= 1000;
    u += 1;
  }
  if (u === 0) return `${n} ${n === 1 ? 'byte' : 'bytes'}`;
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${UNITS[u]}`;
}

/** The message kind for a stored file: its category for media, `file` for anything else. */
export function kindForFile(file) {
  return ['image', 'video', 'audio'].includes(file?.category) ? file.category : 'file';
}

/** A person-readable sentence for a refused or failed upload. */
export function uploadErrorText(err, name) {
  const reason = String(err?.message || '').replace(/\b(\d{4,}) bytes\b/g, (_, n) => formatSize(Number(n)));
  const quoted = name ? `“${name}”` : 'This file';
  switch (err?.status) {
    case 413: return `${quoted} is too large to upload${reason ? ` (${reason})` : ''}.`;
    case 415: return `${quoted} can’t be shared: ${reason || 'this type of file is not allowed'}.`;
    case 403: return `You can’t upload files here${reason ? ` (${reason})` : ''}.`;
    case 404: return 'This room no longer exists.';
    case 401: return 'Your session has expired. Please sign in again.';
    case 400: return `The upload of ${quoted} was refused${reason ? ` (${reason})` : ''}.`;
    case 0: return `The upload of ${quoted} was interrupted. It may be too large or of a type that is not allowed, or the connection dropped.`;
    default: return `The upload of ${quoted} failed${reason ? ` (${reason})` : ''}.`;
  }
}

export class FileService {
  /** `serverOffsetMs()`: server clock minus ours, so expiry times compare on our clock. */
  constructor({ serverOffsetMs = () => 0 } = {}) {
    this.serverOffsetMs = serverOffsetMs;
    this.infos = new Map(); // file id → Promise<file>
    this.links = new Map(); // `${id} ${disposition}` → {url, staleAt (our clock, ms), pending}
  }

  /** The file object; one request per id however many messages show it. */
  info(fileId) {
    let p = this.infos.get(fileId);
    if (!p) {
      p = api.getFile(fileId).then((data) => data.file);
      // A failed look-up is not cached: the next render asks again.
      p.catch(() => { if (this.infos.get(fileId) === p) this.infos.delete(fileId); });
      this.infos.set(fileId, p);
    }
    return p;
  }

  /** Files already known (a listing, an upload answer) need no look-up. */
  remember(files) {
    for (const f of files) if (f?.id) this.infos.set(f.id, Promise.resolve(f));
  }

  /** A cached link that is still good for a while, or null. */
  cachedUrl(fileId, disposition) {
    const entry = this.links.get(`${fileId} ${disposition}`);
    return entry?.url && Date.now() < entry.staleAt ? entry.url : null;
  }

  /** A signed link (string) for the file: the cached one while it has life left, else a new one. */
  url(fileId, disposition = 'attachment') {
    const key = `${fileId} ${disposition}`;
    const fresh = this.cachedUrl(fileId, disposition);
    if (fresh) return Promise.resolve(fresh);
    const entry = this.links.get(key);
    if (entry?.pending) return entry.pending;
    const ttl = LINK_TTL_S[disposition] || LINK_TTL_S.attachment;
    const asked = Date.now();
    const pending = api.signedUrl(fileId, disposition, ttl).then(({ url, expires_at: expiresAt }) => {
      // The server may cap the lifetime; never trust a link past what we asked for either.
      const staleAt = linkStaleAt(expiresAt, {
        serverOffsetMs: this.serverOffsetMs(), issuedAt: asked, marginMs: REFRESH_MARGIN_MS, notAfter: asked + ttl * 1000,
      });
      this.links.set(key, { url, staleAt, pending: null });
      return url;
    }, (err) => {
      this.links.delete(key);
      throw err;
    });
    this.links.set(key, { url: null, staleAt: 0, pending });
    return pending;
  }

  /** Forget a link that stopped working (expired early, revoked), so the next use signs anew. */
  invalidate(fileId, disposition) {
    for (const d of disposition ? [disposition] : Object.keys(LINK_TTL_S)) this.links.delete(`${fileId} ${d}`);
  }

  /** A file was deleted or changed: forget everything about it. */
  forget(fileId) {
    this.infos.delete(fileId);
    this.invalidate(fileId);
  }

  clear() {
    this.infos.clear();
    this.links.clear();
  }
}
