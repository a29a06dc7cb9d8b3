// Uploads in progress (app.uploads): a few at a time with progress, cancel and retry; chat uploads then posted.
//
// Uploads in progress (app.uploads): each chosen or dropped file is one entry, uploaded with
// XMLHttpRequest (api.uploadFile) so its progress can be shown, at most a few at a time. An
// upload for the chat is then posted as a message of the file's kind through the outbox (so a
// drop in the connection only delays the message); an upload into a room folder is not posted.
//
// Entry: {id, room, folder, post, name, size, loaded, total, status, error, retryable}, with
// status queued | uploading | failed. Finished and canceled entries are removed.
// Events: 'change' (entries added, removed or changed status), 'progress' (entry),
//         'uploaded' {room, folder, file, posted}.

import * as api from './api.js';
import { Emitter } from './emitter.js';
import { randomId } from './dom.js';
import { kindForFile, uploadErrorText } from './files.js';

const CONCURRENT = 2;

export class Uploads extends Emitter {
  constructor({ files, outbox }) {
    super();
    this.files = files;
    this.outbox = outbox;
    this.entries = new Map(); // id → entry (insertion order = display order)
    this.handles = new Map(); // id → {file, abort}
    this.onBeforeUnload = (ev) => {
      // Leaving the page ends every upload; ask first.
      if (this.busy) ev.preventDefault();
    };
    window.addEventListener('beforeunload', this.onBeforeUnload);
  }

  /** Queue `file` for `room` (and `folder`); `post` sends it as a chat message when stored. */
  add(room, file, { folder = '', post = true } = {}) {
    const entry = {
      id: randomId(), room, folder, post, name: file.name, size: file.size,
      loaded: 0, total: file.size, status: 'queued', error: null,
    };
    this.entries.set(entry.id, entry);
    this.handles.set(entry.id, { file, abort: null });
    this.emit('change');
    this.pump();
    return entry;
  }

  forRoom(room, { post } = {}) {
    return [...this.entries.values()].filter((e) => e.room === room && (post === undefined || e.post === post));
  }

  get busy() {
    return [...this.entries.values()].some((e) => e.status === 'queued' || e.status === 'uploading');
  }

  /** Stop an upload (or drop a failed one); nothing is stored or sent for it. */
  cancel(id) {
    const handle = this.handles.get(id);
    if (!this.entries.delete(id)) return;
    this.handles.delete(id);
    handle?.abort?.();
    this.emit('change');
    this.pump();
  }

  retry(id) {
    const e = this.entries.get(id);
    if (!e || e.status !== 'failed') return;
    Object.assign(e, { status: 'queued', error: null, loaded: 0 });
    this.emit('change');
    this.pump();
  }

  abortAll() {
    for (const h of this.handles.values()) h.abort?.();
    this.entries.clear();
    this.handles.clear();
    window.removeEventListener('beforeunload', this.onBeforeUnload);
  }

  pump() {
    let running = [...this.entries.values()].filter((e) => e.status === 'uploading').length;
    for (const e of this.entries.values()) {
      if (running >= CONCURRENT) break;
      if (e.status !== 'queued') continue;
      running += 1;
      this.start(e);
    }
  }

  start(entry) {
    const handle = this.handles.get(entry.id);
    entry.status = 'uploading';
    this.emit('change');
    const { promise, abort } = api.uploadFile(handle.file, { room: entry.room, folder: entry.folder }, {
      onProgress: (loaded, total) => {
        entry.loaded = loaded;
        entry.total = total || entry.size;
        this.emit('progress', entry);
      },
    });
    handle.abort = abort;
    promise.then((file) => this.finished(entry, file), (err) => this.failed(entry, err));
  }

  finished(entry, file) {
    if (this.entries.get(entry.id) !== entry) return; // canceled meanwhile
    this.entries.delete(entry.id);
    this.handles.delete(entry.id);
    this.files.remember([file]);
    if (entry.post) {
      this.outbox.add(entry.room, {
        kind: kindForFile(file), content: '', file_id: file.id,
        file: { name: file.name, size: file.size, category: file.category },
      });
    }
    this.emit('uploaded', { room: entry.room, folder: file.folder, file, posted: entry.post });
    this.emit('change');
    this.pump();
  }

  failed(entry, err) {
    if (this.entries.get(entry.id) !== entry) return; // canceled: already gone
    console.warn(`upload of "${entry.name}" to room ${entry.room} failed: ${err.status} ${err.code} ${err.message}`);
    entry.status = 'failed';
    entry.error = uploadErrorText(err, entry.name);
    // Too large, wrong type, not allowed: sending the same bytes again cannot help.
    entry.retryable = err.status === 0 || err.status === 429 || err.status >= 500;
    this.handles.get(entry.id).abort = null;
    this.emit('change');
    this.pump();
  }
}
