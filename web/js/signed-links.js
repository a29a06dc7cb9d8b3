// Signed links (files, recording assets): when one is stale, and an <a> that gets a fresh link before it is followed.
//
// Links carry `expires_at` on the server's clock; `serverOffsetMs` (server minus ours, from
// `hello`) turns it into ours. app.files caches one link per file and disposition,
// app.recordings the links inside each recording; both decide staleness with linkStaleAt, and
// the views' download links (attachment.js, recordings-panel.js) use keepLinkFresh.

/**
 * When (our clock, ms) a link expiring at `expiresAt` (ISO, server clock) should no longer be
 * used: `marginMs` before it expires, or a quarter of its life when that is less (short links).
 * `issuedAt`: when we got it (our clock; unknown: no quarter-life rule); `notAfter`: a cap of
 * our own on its life. Null when nothing says when it expires.
 */
export function linkStaleAt(expiresAt, { serverOffsetMs = 0, issuedAt = null, marginMs, notAfter = Infinity }) {
  const serverExpiry = Date.parse(expiresAt) - serverOffsetMs;
  const expires = Math.min(notAfter, Number.isNaN(serverExpiry) ? Infinity : serverExpiry);
  if (expires === Infinity) return null;
  const life = issuedAt === null ? 0 : Math.max(0, expires - issuedAt);
  return expires - Math.min(marginMs, life / 4);
}

/**
 * Let the <a> `a` be followed only with a fresh link. `isFresh()`: is its href good for a while
 * yet? `refresh()`: a promise of a fresh URL. On hover or focus a stale href is replaced; a
 * click on a stale one waits for the fresh link, then clicks again (the error goes in the
 * title and `data-error`). Returns `renew()`, which fetches and sets a fresh href now.
 */
export function keepLinkFresh(a, { isFresh, refresh }) {
  let following = false;
  const renew = () => refresh().then((url) => {
    a.href = url;
    return url;
  });
  a.addEventListener('click', (ev) => {
    if (following) {
      following = false; // our own re-click with a fresh link: let it through
      return;
    }
    if (isFresh()) return;
    ev.preventDefault();
    renew().then(() => {
      following = true;
      a.click();
    }, (err) => {
      a.title = `Cannot download: ${err.message}`;
      a.dataset.error = err.code || 'error';
    });
  });
  const renewIfStale = () => {
    if (!isFresh()) renew().catch(() => {});
  };
  a.addEventListener('pointerenter', renewIfStale);
  a.addEventListener('focus', renewIfStale);
  return renew;
}
