// A message's attachment (image, player or file chip) with its signed download links, and the rows of uploads in progress.
//
// Attachments: what a message's file looks like (an image preview, a video or audio player, or
// a file chip with name and size), download links, and the rows of uploads in progress.
// Every link is a signed one from app.files, fetched when the element first scrolls into view
// and fetched again when it expired.

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { formatSize } from '../files.js';
import { keepLinkFresh } from '../signed-links.js';

const MEDIA_RECOVERIES = 3; // fresh links tried, in a row, for a player whose link failed

// One observer for every lazily loaded link: elements call back once, when first (nearly) seen.
const pendingVisible = new WeakMap();
let observer = null;
function whenVisible(el, fn) {
  if (typeof IntersectionObserver === 'undefined') {
    fn();
    return;
  }
  observer ||= new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      const cb = pendingVisible.get(entry.target);
      pendingVisible.delete(entry.target);
      observer.unobserve(entry.target);
      cb?.();
    }
  }, { rootMargin: '300px 0px' });
  pendingVisible.set(el, fn);
  observer.observe(el);
}

function unobserve(el) {
  pendingVisible.delete(el);
  observer?.unobserve(el);
}

/**
 * An <a> that downloads `file` through a signed `attachment` link. The href is fetched when
 * the link is first seen and fetched again on hover, focus or click once it is about to expire.
 */
export function signedLink(files, file, props = {}, ...children) {
  // '#' until the signed link arrives (the click handler fetches it if it has not yet).
  const a = h('a', { href: '#', ...props, download: file.name, dataset: { ...(props.dataset || {}), fileId: file.id } }, ...children);
  const renew = keepLinkFresh(a, {
    isFresh: () => {
      const fresh = files.cachedUrl(file.id, 'attachment');
      return !!fresh && a.getAttribute('href') === fresh;
    },
    refresh: () => files.url(file.id, 'attachment'),
  });
  whenVisible(a, () => renew().catch((err) => console.warn(`file ${file.id}: no download link: ${err.code}`)));
  return a;
}

/** Name · size line with a download link, under previews and players. */
function metaLine(files, file) {
  return h('div', { class: 'attachment-meta' },
    h('span', { class: 'file-name', testid: 'file-name', title: file.name }, file.name),
    h('span', { class: 'file-size', testid: 'file-size' }, formatSize(file.size)),
    signedLink(files, file, { class: 'attachment-download', testid: 'attachment-download', 'aria-label': `Download ${file.name}` },
      icon('download', { size: 14 }), 'Download'));
}

/** The chip of a file that is not previewed: icon, name, size; the whole chip downloads it. */
export function fileChip(files, file) {
  return signedLink(files, file, { class: 'file-chip', testid: 'file-chip', title: `Download ${file.name}` },
    h('span', { class: 'file-chip-icon', 'aria-hidden': 'true' }, icon('file', { size: 20 })),
    h('span', { class: 'file-chip-text' },
      h('span', { class: 'file-name', testid: 'file-name' }, file.name),
      h('span', { class: 'file-size', testid: 'file-size' }, `${formatSize(file.size)}${file.category ? ` · ${file.category}` : ''}`)),
    h('span', { class: 'file-chip-action', 'aria-hidden': 'true' }, icon('download', { size: 16 })));
}

/**
 * The attachment of message `m` (which has a file_id): {el, destroy()}. Loads the file's info
 * at once and its inline link when first seen. A player whose link expires or fails mid-play
 * gets a fresh link and resumes where it was.
 */
export function createAttachment(files, m) {
  const fileId = m.file_id;
  const kind = ['image', 'video', 'audio'].includes(m.kind) ? m.kind : 'file';
  const el = h('div', {
    class: `attachment attachment-${kind}`, testid: 'attachment', dataset: { fileId, kind, state: 'loading' },
  }, h('span', { class: 'attachment-loading muted' }, 'Loading attachment…'));
  let destroyed = false;
  let media = null;

  function showError(text) {
    el.dataset.state = 'error';
    el.replaceChildren(h('span', { class: 'attachment-error', testid: 'attachment-error', role: 'status' },
      icon('warning', { size: 15 }), text));
  }

  function ready(...children) {
    el.dataset.state = 'ready';
    el.replaceChildren(...children);
  }

  files.info(fileId).then((file) => {
    if (destroyed) return;
    if (kind === 'image') renderImage(file);
    else if (kind === 'video' || kind === 'audio') renderPlayer(file);
    else ready(fileChip(files, file));
  }, (err) => {
    if (destroyed) return;
    console.warn(`message ${m.id}: file ${fileId}: ${err.code} ${err.message}`);
    showError(err.status === 404 ? 'This file is no longer available.' : `Cannot load this file: ${err.message}`);
  });

  function renderImage(file) {
    const img = h('img', { class: 'attachment-img', testid: 'attachment-image', alt: file.name, decoding: 'async' });
    const open = h('a', { class: 'attachment-frame', target: '_blank', rel: 'noopener', title: `Open ${file.name}` }, img);
    let retried = false;
    const load = () => files.url(fileId, 'inline').then((url) => {
      if (destroyed) return;
      img.src = url;
      open.href = url;
    }, (err) => showError(`Cannot show this image: ${err.message}`));
    img.addEventListener('error', () => {
      if (destroyed || !img.getAttribute('src')) return;
      if (retried) {
        showError(`“${file.name}” could not be shown.`);
        return;
      }
      retried = true; // the link may have expired or been revoked: one fresh try
      files.invalidate(fileId, 'inline');
      load();
    });
    ready(open, metaLine(files, file));
    whenVisible(open, load);
  }

  function renderPlayer(file) {
    media = h(kind, {
      class: `attachment-${kind}-player`, testid: `attachment-${kind}`, controls: true, preload: 'metadata',
      'aria-label': file.name,
    });
    let recoveries = 0;
    let wantPlaying = false;
    const load = () => files.url(fileId, 'inline').then((url) => {
      if (!destroyed) media.src = url;
    }, (err) => showError(`Cannot play this ${kind}: ${err.message}`));
    media.addEventListener('play', () => { wantPlaying = true; });
    media.addEventListener('pause', () => { if (!media.error) wantPlaying = false; });
    media.addEventListener('canplay', () => { recoveries = 0; });
    media.addEventListener('error', () => {
      if (destroyed || !media.getAttribute('src')) return;
      if (recoveries >= MEDIA_RECOVERIES) {
        showError(`“${file.name}” could not be played.`);
        return;
      }
      // Most likely the signed link expired while playing: sign again, resume where we were.
      recoveries += 1;
      const at = media.currentTime;
      const resume = wantPlaying;
      files.invalidate(fileId, 'inline');
      files.url(fileId, 'inline').then((url) => {
        if (destroyed) return;
        media.addEventListener('loadedmetadata', () => {
          if (at) media.currentTime = at;
          if (resume) media.play().catch(() => {});
        }, { once: true });
        media.src = url;
      }, (err) => showError(`Cannot play this ${kind}: ${err.message}`));
    });
    ready(h('div', { class: `attachment-player attachment-player-${kind}` }, media), metaLine(files, file));
    whenVisible(media, load);
  }

  return {
    el,
    destroy() {
      destroyed = true;
      unobserve(el);
      if (media) {
        unobserve(media);
        media.pause();
        media.removeAttribute('src');
        media.load(); // stops any range request still streaming
      }
    },
  };
}

/**
 * Rows of the uploads `filter` selects from app.uploads, kept current: {el, destroy()}.
 * Each row has the file name, a <progress> of the bytes sent, and Cancel (or the error,
 * Retry and Dismiss once it failed).
 */
export function createUploadList(app, filter, { label = 'Uploads' } = {}) {
  const list = h('ul', { class: 'upload-list', testid: 'upload-list', 'aria-label': label, hidden: true });
  const rows = new Map(); // entry id → {li, bar, pct}

  function render() {
    const entries = [...app.uploads.entries.values()].filter(filter);
    rows.clear();
    list.replaceChildren(...entries.map((e) => {
      const failed = e.status === 'failed';
      const bar = h('progress', { class: 'upload-bar', testid: 'upload-progress', 'aria-label': `Uploading ${e.name}` });
      const pct = h('span', { class: 'upload-pct' });
      const li = h('li', {
        class: `upload-item${failed ? ' failed' : ''}`, testid: 'upload-item',
        dataset: { uploadId: e.id, status: e.status, fileName: e.name },
      },
      h('span', { class: 'upload-icon', 'aria-hidden': 'true' }, icon(failed ? 'warning' : 'paperclip', { size: 15 })),
      h('span', { class: 'upload-name', testid: 'upload-name', title: e.name }, e.name),
      h('span', { class: 'upload-size muted' }, formatSize(e.size)),
      failed ? null : bar,
      failed ? null : pct,
      failed ? h('span', { class: 'upload-error', testid: 'upload-error', role: 'alert' }, e.error) : null,
      failed && e.retryable ? h('button', { type: 'button', class: 'btn btn-small btn-secondary', testid: 'upload-retry', onclick: () => app.uploads.retry(e.id) }, 'Retry') : null,
      h('button', {
        type: 'button', class: 'icon-btn upload-cancel', testid: failed ? 'upload-dismiss' : 'upload-cancel',
        'aria-label': failed ? `Dismiss ${e.name}` : `Cancel upload of ${e.name}`, title: failed ? 'Dismiss' : 'Cancel upload',
        onclick: () => app.uploads.cancel(e.id),
      }, icon('close', { size: 15 })));
      rows.set(e.id, { li, bar, pct });
      showProgress(e);
      return li;
    }));
    list.hidden = !entries.length;
  }

  function showProgress(e) {
    const row = rows.get(e.id);
    if (!row) return;
    row.li.dataset.status = e.status;
    if (e.status === 'queued') {
      row.bar.removeAttribute('value'); // indeterminate until the first bytes go
      row.pct.textContent = 'Waiting…';
      return;
    }
    const total = e.total || e.size || 1;
    const percent = Math.min(100, Math.floor((e.loaded / total) * 100));
    row.bar.max = total;
    row.bar.value = e.loaded;
    row.bar.dataset.percent = String(percent);
    row.pct.textContent = e.loaded >= total ? 'Processing…' : `${percent}%`;
  }

  const offs = [app.uploads.on('change', render), app.uploads.on('progress', showProgress)];
  render();
  return { el: list, destroy: () => offs.forEach((off) => off()) };
}
