// The Recordings dialog: the room's recordings with status, progress, duration, thumbnail and signed downloads.
//
// The room's Recordings panel (a dialog): every recording of the room's calls, newest first,
// with its status (a progress bar while the worker builds the class video), duration,
// thumbnail and downloads — the class video, the chat as WebVTT subtitles and, for
// instructors, each participant's own file. Kept current by app.recordings (recording.*
// events); links are signed and expire, so they are fetched again before use once stale.

import { h, formatTime, formatFullTime } from '../dom.js';
import { icon } from '../icons.js';
import { formatSize } from '../files.js';
import { formatDuration, participantOf } from '../recordings.js';
import { keepLinkFresh } from '../signed-links.js';
import { openModal } from './modal.js';
import { confirmAction } from './confirm.js';

const STATUS_TEXT = {
  pending: 'Starting…',
  recording: 'Recording now',
  processing: 'Processing',
  ready: 'Ready',
  failed: 'Failed',
};
const MIN_REFRESH_MS = 1000;

/** Open the Recordings panel of a room (closing any other one). */
export function openRecordingsPanel(app, roomId) {
  const room = String(roomId);
  const service = app.recordings;
  const roomName = app.roomTitle(room) || 'this room';
  const list = h('ul', { class: 'rec-items' });
  const body = h('div', { class: 'rec-body', testid: 'recordings-list', 'aria-live': 'polite' },
    h('p', { class: 'rec-empty muted' }, 'Loading recordings…'));

  const items = new Map(); // recording id → item view
  let loaded = false;
  let destroyed = false;
  let linkTimer = null;
  let offs = [];
  const { dialog, summary, close } = openModal({
    testid: 'recordings-panel', className: 'recordings-modal', titleId: 'recordings-title', title: 'Recordings',
    subtitle: roomName, closeTestid: 'close-recordings', body: [body],
    onClose() {
      destroyed = true;
      clearTimeout(linkTimer);
      offs.forEach((off) => off());
    },
  });
  offs = [
    service.on('change', (ev) => { if (ev.room === room && loaded) render(); }),
    service.on('list', (ev) => { if (ev.room === room) render(); }),
    app.on('rooms', () => { if (loaded) render(); }),
  ];
  load();

  async function load() {
    try {
      await service.load(room);
    } catch (err) {
      if (!destroyed) body.replaceChildren(h('p', { class: 'form-error', testid: 'recordings-error', role: 'alert' }, `Cannot load this room’s recordings: ${err.message}`));
      return;
    }
    if (destroyed) return;
    loaded = true;
    render();
  }

  function render() {
    if (destroyed) return;
    const recordings = service.list(room) || [];
    const ready = recordings.filter((r) => r.status === 'ready').length;
    summary.textContent = recordings.length
      ? `${roomName} · ${recordings.length} recording${recordings.length === 1 ? '' : 's'}${ready !== recordings.length ? `, ${ready} ready` : ''}`
      : roomName;
    if (!recordings.length) {
      items.clear();
      body.replaceChildren(h('p', { class: 'rec-empty muted', testid: 'recordings-empty' },
        app.isInstructor(room)
          ? 'No recordings in this room yet. Press Record during a live call to make one.'
          : 'No recordings in this room yet.'));
      return;
    }
    if (list.parentNode !== body) body.replaceChildren(list);
    const wanted = new Set(recordings.map((r) => r.id));
    for (const [id, item] of items) {
      if (!wanted.has(id)) {
        item.el.remove();
        items.delete(id);
      }
    }
    recordings.forEach((rec, i) => {
      let item = items.get(rec.id);
      if (!item) {
        item = createItem(app, rec.id, close);
        items.set(rec.id, item);
      }
      item.update(rec);
      if (list.children[i] !== item.el) list.insertBefore(item.el, list.children[i] || null);
    });
    scheduleLinkRefresh(recordings);
  }

  // Signed links expire: while the panel is open, fetch each recording again shortly before
  // its links do (a click on a stale link fetches too; this keeps thumbnails and hrefs good).
  function scheduleLinkRefresh(recordings) {
    clearTimeout(linkTimer);
    let first = null;
    let due = null;
    for (const rec of recordings) {
      const at = service.staleAt(rec);
      if (at !== null && (first === null || at < first)) {
        first = at;
        due = rec;
      }
    }
    if (!due) return;
    linkTimer = setTimeout(() => {
      service.refresh(due.id).catch((err) => console.warn(`recording ${due.id}: cannot refresh its links`, err.code));
    }, Math.max(MIN_REFRESH_MS, first - Date.now()));
  }

  return dialog;
}

const FALLBACK_TEXT = {
  could_not_keep_up: 'Processing after the class: the machine could not keep up',
  segment_failed: 'Processing after the class: building it during the class failed',
};

/** "Ready in about N min" for `seconds` left (whole minutes, rounded up). */
export function readyIn(seconds) {
  if (seconds < 60) return 'Ready in less than a minute';
  return `Ready in about ${Math.ceil(seconds / 60)} min`;
}

/** One recording in the list: {el, update(recording)}; parts are updated in place. `closePanel`: Watch leaves the dialog for the playback page. */
function createItem(app, id, closePanel) {
  const service = app.recordings;
  const thumb = h('div', { class: 'rec-thumb', 'aria-hidden': 'true' }, icon('film', { size: 26 }));
  const title = h('h3', { class: 'rec-title' });
  const status = h('span', { class: 'rec-status', testid: 'recording-status' });
  const duration = h('span', { class: 'rec-duration', testid: 'recording-duration' });
  const progress = h('progress', { class: 'rec-progress', testid: 'recording-progress', max: '100' });
  const progressText = h('span', { class: 'rec-progress-text muted', testid: 'recording-eta' });
  const fallbackNote = h('span', { class: 'rec-fallback muted', testid: 'recording-fallback', hidden: true });
  const progressRow = h('div', { class: 'rec-progress-row', hidden: true }, progress, progressText, fallbackNote);
  const reason = h('p', { class: 'rec-reason', testid: 'recording-reason', role: 'note', hidden: true });
  const downloads = createDownloads(app, id);
  // Instructors: rename and delete a finished recording (recordings/manage.py on the server).
  const renameBtn = h('button', { type: 'button', class: 'act', testid: 'recording-rename', hidden: true, onclick: () => rename() }, 'Rename');
  const deleteBtn = h('button', { type: 'button', class: 'act act-danger', testid: 'recording-delete', hidden: true, onclick: () => remove() }, 'Delete');
  const manageNote = h('span', { class: 'form-note' });
  // The playback page (#/recordings/<id>, views/playback-page.js), once there is a class video to watch.
  const watch = h('a', { class: 'btn btn-primary btn-small rec-watch', testid: 'recording-watch', href: `#/recordings/${encodeURIComponent(id)}`, hidden: true,
    onclick: () => closePanel() }, icon('video', { size: 15 }), 'Watch');
  const when = h('span', { class: 'rec-when muted' });
  const el = h('li', { class: 'rec-item', testid: 'recording-item', dataset: { recordingId: id } },
    thumb,
    h('div', { class: 'rec-main' },
      h('div', { class: 'rec-head' }, title, status),
      h('div', { class: 'rec-meta' }, when, duration, watch, renameBtn, deleteBtn, manageNote),
      progressRow,
      reason,
      downloads.el));
  let thumbAssetId = null;

  async function rename() {
    const rec = service.get(id);
    const input = h('input', { type: 'text', class: 'input-small', testid: 'recording-title-input', value: rec?.title || '', maxlength: '200' });
    const save = h('button', { type: 'submit', class: 'act', testid: 'recording-title-save' }, 'Save');
    const form = h('form', { class: 'rec-rename', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await service.rename(id, input.value);
        manageNote.textContent = '';
        title.replaceChildren();
        update(service.get(id));
      } catch (err) {
        manageNote.textContent = `Could not rename: ${err.message}`;
      }
    } }, input, save);
    title.replaceChildren(form);
    input.focus();
  }

  async function remove() {
    const rec = service.get(id);
    const ok = await confirmAction({ title: 'Delete this recording?', text: `"${rec?.title || 'Recording'}" and all its files are deleted for everyone. This cannot be undone.`, confirmLabel: 'Delete' });
    if (!ok) return;
    try {
      await service.remove(rec);
    } catch (err) {
      manageNote.textContent = `Could not delete: ${err.message}`;
    }
  }

  function update(rec) {
    el.dataset.status = rec.status;
    const at = rec.started_at || rec.requested_at;
    if (!title.querySelector('form')) title.replaceChildren(h('span', { testid: 'recording-title' }, rec.title || formatTime(at) || 'Recording'));
    when.replaceChildren(h('time', { datetime: at, title: formatFullTime(at) }, formatTime(at) || ''));
    const manage = app.isInstructor(rec.room) && (rec.status === 'ready' || rec.status === 'failed');
    watch.hidden = !(rec.status === 'ready' && rec.assets?.some((a) => a.kind === 'composite'));
    renameBtn.hidden = !manage;
    deleteBtn.hidden = !manage;
    status.textContent = STATUS_TEXT[rec.status] || rec.status;
    status.dataset.status = rec.status;
    const seconds = rec.duration_s ?? rec.assets?.find((a) => a.kind === 'composite')?.duration_s;
    duration.textContent = typeof seconds === 'number' ? formatDuration(seconds) : '';
    duration.hidden = typeof seconds !== 'number';
    duration.title = typeof seconds === 'number' ? `${Math.round(seconds)} seconds` : '';

    const processing = rec.status === 'processing';
    progressRow.hidden = !processing;
    if (processing) {
      const pct = typeof rec.progress === 'number' ? Math.max(0, Math.min(100, rec.progress)) : null;
      if (pct === null) {
        progress.removeAttribute('value'); // indeterminate until the first report
        progress.dataset.percent = '';
        progressText.textContent = 'Building the class video…';
      } else {
        progress.value = pct;
        progress.dataset.percent = String(pct);
        progressText.textContent = `Building the class video… ${pct} %`;
      }
      // The worker's estimate (issue 15.4): "Ready in about N min" instead of a bare percentage.
      if (typeof rec.eta_s === 'number') progressText.textContent = readyIn(rec.eta_s);
      progressText.dataset.eta = typeof rec.eta_s === 'number' ? String(rec.eta_s) : '';
      fallbackNote.hidden = !rec.fallback;
      fallbackNote.textContent = rec.fallback ? FALLBACK_TEXT[rec.fallback] || FALLBACK_TEXT.could_not_keep_up : '';
    }
    reason.hidden = rec.status !== 'failed';
    reason.textContent = rec.status === 'failed' ? (rec.reason || 'The recording failed.') : '';

    renderThumb(rec);
    downloads.render(rec);
  }

  function renderThumb(rec) {
    const asset = rec.assets?.find((a) => a.kind === 'thumbnail' && (a.inline_url || a.url));
    if (!asset) {
      if (thumbAssetId !== null) thumb.replaceChildren(icon('film', { size: 26 }));
      thumbAssetId = null;
      return;
    }
    if (thumbAssetId === asset.id) return; // loaded already; a fresher link changes nothing
    thumbAssetId = asset.id;
    let retried = false;
    const img = h('img', { src: asset.inline_url || asset.url, alt: '', testid: 'recording-thumbnail', loading: 'lazy', decoding: 'async' });
    img.addEventListener('error', () => {
      // Most likely an expired link: fetch the recording again once and retry.
      if (retried) return;
      retried = true;
      service.refresh(id).then((fresh) => {
        const a = fresh.assets?.find((x) => x.id === asset.id);
        if (a) img.src = a.inline_url || a.url;
      }, () => {});
    });
    thumb.replaceChildren(img);
  }

  return { el, update };
}

/** A recording's download links (class video, participants' files for instructors, chat): {el, render(recording)}. */
function createDownloads(app, id) {
  const service = app.recordings;
  const el = h('div', { class: 'rec-downloads' });
  let key = null;
  const links = new Map(); // asset id → <a>

  function render(rec) {
    const instructor = app.isInstructor(rec.room);
    const assets = rec.status === 'ready' ? (rec.assets || []) : [];
    const shown = [
      ...assets.filter((a) => a.kind === 'composite').map((a) => ({ a, testid: 'download-class-video', label: 'Class video', icon: 'video' })),
      ...assets.filter((a) => a.kind === 'participant' && instructor).map((a) => ({ a, testid: 'download-participant', label: participantLabel(app, rec, a), icon: 'user' })),
      ...assets.filter((a) => a.kind === 'chat').map((a) => ({ a, testid: 'download-chat', label: 'Chat (.vtt)', icon: 'file' })),
    ];
    const nextKey = shown.map((s) => `${s.testid}:${s.a.id}:${s.label}`).join('|');
    if (nextKey !== key) {
      key = nextKey;
      links.clear();
      el.replaceChildren(...shown.map((s) => {
        const a = downloadLink(s.a, s.testid, s.label, s.icon);
        links.set(s.a.id, a);
        return a;
      }));
    }
    for (const s of shown) {
      const a = links.get(s.a.id);
      if (a && a.getAttribute('href') !== s.a.url) a.href = s.a.url;
    }
    el.hidden = !shown.length;
  }

  /** A signed link that is fetched again (the whole recording) before it is followed once stale. */
  function downloadLink(asset, testid, label, iconName) {
    const a = h('a', {
      href: asset.url, class: 'btn btn-secondary btn-small rec-download', testid, download: asset.name,
      title: `Download ${asset.name}${asset.size ? ` (${formatSize(asset.size)})` : ''}`,
      dataset: { assetId: asset.id, kind: asset.kind },
    }, icon(iconName, { size: 15 }), h('span', { class: 'rec-download-label' }, label),
    asset.size ? h('span', { class: 'rec-download-size' }, formatSize(asset.size)) : null);
    keepLinkFresh(a, {
      isFresh: () => {
        const rec = service.get(id);
        return !!rec && !service.stale(rec);
      },
      refresh: () => service.fresh(id).then((rec) => {
        const current = rec.assets?.find((x) => x.id === asset.id);
        if (!current) throw new Error('this file is no longer available');
        return current.url;
      }),
    });
    return a;
  }

  return { el, render };
}

/** "Ana" (or "Ana (part 2)" when she has several files), else the file's name. */
function participantLabel(app, rec, asset) {
  const who = participantOf(asset);
  const name = who ? app.store.room(rec.room).displayName(who.userId) : null;
  const all = rec.assets.filter((x) => x.kind === 'participant' && participantOf(x)?.userId === who?.userId);
  const part = all.length > 1 ? ` (part ${who.n + 1})` : '';
  return name ? `${name}${part}` : asset.name;
}
