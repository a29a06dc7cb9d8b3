// The playback page's data and rules without the DOM: its route, moments in links, which chat line or chapter is current, chat search.
//
// Route: `#/recordings/<id>`, optionally with a moment: `?t=1m30s`, `#t=90`, `&t=1:30` after
// the id (or `?t=` in the page's own query string). GET /api/recordings/{id}/playback gives
// the recording (signed links), `duration_s`, `chapters`, `chat` and `speakers`, every time
// in seconds from the class video's start (docs/PROTOCOL-ADDITIONS.md).

import * as api from './api.js';

export const SPEEDS = [0.75, 1, 1.25, 1.5, 1.75, 2];

const ROUTE_RE = /^#\/recordings\/([^/?#&]+)(.*)$/;

/** `#/recordings/12?t=1m30s` → {id: '12', t: 90}; null when the hash is no playback route. */
export function parsePlaybackRoute(hash, search = '') {
  const m = ROUTE_RE.exec(hash || '');
  if (!m) return null;
  const rest = /[?#&]t=([^&#?]*)/.exec(m[2]) || /[?&]t=([^&#]*)/.exec(search || '');
  return { id: decodeURIComponent(m[1]), t: rest ? parseMoment(decodeURIComponent(rest[1])) : null };
}

/** "90", "90s", "1m30s", "1h2m3s", "1:30", "1:02:03", "12.5" → seconds; null when unreadable. */
export function parseMoment(text) {
  const s = String(text ?? '').trim().toLowerCase();
  if (!s) return null;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  let m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(s);
  if (m && (m[1] || m[2] || m[3])) return (Number(m[1] || 0) * 3600) + (Number(m[2] || 0) * 60) + Number(m[3] || 0);
  m = /^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/.exec(s);
  if (m) return (Number(m[1] || 0) * 3600) + (Number(m[2]) * 60) + Number(m[3]);
  return null;
}

/** 90 → "1m30s"; 3725 → "1h2m5s"; 7 → "7s" (whole seconds, for links). */
export function momentParam(seconds) {
  let s = Math.max(0, Math.floor(Number(seconds) || 0));
  const hh = Math.floor(s / 3600);
  s -= hh * 3600;
  const mm = Math.floor(s / 60);
  s -= mm * 60;
  return `${hh ? `${hh}h` : ''}${hh || mm ? `${mm}m` : ''}${s}s`;
}

/** The page's link, opening at `seconds` when given. */
export function playbackLink(id, seconds = null, origin = location.origin) {
  const base = `${origin}/#/recordings/${encodeURIComponent(id)}`;
  return seconds === null || seconds === undefined ? base : `${base}?t=${momentParam(seconds)}`;
}

/** Index of the last item whose `key(item)` ≤ t (items sorted by it); -1 before the first. */
export function indexAt(items, t, key) {
  let lo = 0;
  let hi = items.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (key(items[mid]) <= t + 1e-3) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/** Does a chat line match the search (its text or its author's name, any case, accents ignored)? */
export function chatMatches(line, query) {
  const q = fold(query).trim();
  if (!q) return true;
  return fold(line.text).includes(q) || fold(line.user?.display_name).includes(q);
}

function fold(text) {
  return String(text || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

/** GET /api/recordings/{id}/playback. */
export function loadPlayback(id) {
  return api.request('GET', `/api/recordings/${encodeURIComponent(id)}/playback`);
}
