// Runs before the rest of the client (main.js imports it first), for pages an LMS frames
// (docs/LMS.md):
// - When the browser refuses storage to this page (a cross-site iframe with third-party
//   cookies blocked: reading localStorage throws), localStorage becomes an in-memory Storage
//   for this page, so the client works (signed in until the frame is reloaded).
// - An LTI launch (server/lti/pages.py, /lti-launch.js) arrives as #lti-token=<jwt>&room=<id>
//   [&recording=<id>]: the token is kept as api.js keeps it, and the URL becomes #/rooms/<id>
//   (or #/recordings/<id>, a Deep Linking link to a recording; the token leaves the address
//   bar and the history entry).

function memoryStorage() {
  const items = new Map();
  return {
    get length() { return items.size; },
    key: (i) => [...items.keys()][i] ?? null,
    getItem: (k) => (items.has(String(k)) ? items.get(String(k)) : null),
    setItem: (k, v) => { items.set(String(k), String(v)); },
    removeItem: (k) => { items.delete(String(k)); },
    clear: () => items.clear(),
  };
}

try {
  window.localStorage.getItem('podium.token');
} catch (err) {
  Object.defineProperty(window, 'localStorage', { value: memoryStorage(), configurable: true });
}

const handoff = /^#lti-token=([^&]+)&room=([^&]+)(?:&recording=([^&]+))?$/.exec(location.hash);
if (handoff) {
  localStorage.setItem('podium.token', decodeURIComponent(handoff[1]));
  // a Deep Linking link to a recording opens its playback page (#/recordings/<id>)
  const route = handoff[3] ? `#/recordings/${handoff[3]}` : `#/rooms/${handoff[2]}`;
  history.replaceState(null, '', `${location.pathname}${route}`);
}
