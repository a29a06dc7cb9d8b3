// The Files dialog: the room's files grouped by folder with signed download links, and uploads into a folder.
//
// The room's Files panel (a dialog): every file of the room (GET /api/files?room=), grouped by
// folder, each with a signed download link; upload into a folder (not posted in the chat).
// The list reloads when an upload finishes or an attachment is posted while it is open.
// Rename, move and delete: a file by its owner or a room instructor; a folder (with every
// file and folder in it) by a room instructor (docs/FILES.md "Managing files and folders").

import * as api from '../api.js';
import { h, formatTime, formatFullTime } from '../dom.js';
import { icon } from '../icons.js';
import { formatSize } from '../files.js';
import { createUploadList, signedLink } from './attachment.js';
import { openModal } from './modal.js';
import { askText, confirmAction } from './confirm.js';

const RELOAD_DELAY_MS = 250;
const byName = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Open the Files panel of a room (closing any other one). */
export function openFilesPanel(app, roomId) {
  const roomName = app.roomTitle(roomId) || 'this room';
  const folders = h('datalist', { id: 'files-folders' });
  const folderInput = h('input', {
    id: 'files-folder-input', testid: 'files-folder-input', list: 'files-folders', autocomplete: 'off',
    placeholder: 'No folder (e.g. week 1/labs)', maxlength: '255',
  });
  const fileInput = h('input', {
    type: 'file', multiple: true, hidden: true, testid: 'files-upload-input', tabindex: '-1', 'aria-hidden': 'true',
    onchange: () => {
      if (fileInput.files.length) app.uploadToFolder(roomId, folderInput.value.trim(), fileInput.files);
      fileInput.value = '';
    },
  });
  const upload = h('button', { type: 'button', class: 'btn btn-primary btn-small', testid: 'files-upload', onclick: () => fileInput.click() },
    icon('upload', { size: 15 }), 'Upload');
  const uploads = createUploadList(app, (e) => e.room === roomId && !e.post, { label: 'Files being uploaded to this room' });
  const body = h('div', { class: 'files-body', testid: 'files-list' }, h('p', { class: 'files-empty muted' }, 'Loading files…'));
  const note = h('p', { class: 'form-note', testid: 'files-note', role: 'status', hidden: true });
  let current = []; // the files last listed

  let destroyed = false;
  let reloadTimer = null;
  let offs = [];
  const { dialog, summary } = openModal({
    testid: 'files-panel', className: 'files-modal', titleId: 'files-title', title: 'Files', subtitle: roomName, closeTestid: 'close-files',
    body: [
      h('div', { class: 'files-controls' },
        h('label', { for: 'files-folder-input' }, 'Upload to folder'), folderInput, folders, upload, fileInput),
      uploads.el,
      note,
      body,
    ],
    onClose() {
      destroyed = true;
      clearTimeout(reloadTimer);
      offs.forEach((off) => off());
      uploads.destroy();
    },
  });
  offs = [
    app.uploads.on('uploaded', (ev) => { if (ev.room === roomId) reloadSoon(); }),
    app.store.on('messages', (ev) => {
      if (ev.room === roomId && ev.messages.some((m) => m.file_id)) reloadSoon();
    }),
    app.on('files', (ev) => { if (ev?.room === roomId) reloadSoon(); }), // deleted with its message
  ];
  load();

  function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, RELOAD_DELAY_MS);
  }

  async function load() {
    let files;
    try {
      ({ files = [] } = await api.listFiles({ room: roomId }));
    } catch (err) {
      if (!destroyed) body.replaceChildren(h('p', { class: 'form-error', testid: 'files-error', role: 'alert' }, `Cannot load this room’s files: ${err.message}`));
      return;
    }
    if (destroyed) return;
    app.files.remember(files);
    current = files;
    render(files);
  }

  function render(files) {
    const groups = new Map();
    for (const f of files) {
      if (!groups.has(f.folder || '')) groups.set(f.folder || '', []);
      groups.get(f.folder || '').push(f);
    }
    // The room's root first, then folders by name ("week 2" before "week 10").
    const names = [...groups.keys()].sort((a, b) => (!a || !b ? Number(!!a) - Number(!!b) : byName.compare(a, b)));
    folders.replaceChildren(...names.filter(Boolean).map((name) => h('option', { value: name })));
    const bytes = files.reduce((n, f) => n + (f.size || 0), 0);
    summary.textContent = files.length
      ? `${roomName} · ${files.length} file${files.length === 1 ? '' : 's'}, ${formatSize(bytes)}`
      : roomName;
    if (!files.length) {
      body.replaceChildren(h('p', { class: 'files-empty muted', testid: 'files-empty' },
        'No files in this room yet. Upload one here, or attach it to a message.'));
      return;
    }
    body.replaceChildren(...names.map((folder) => {
      const items = groups.get(folder).sort((a, b) => byName.compare(a.name, b.name));
      return h('section', { class: 'files-folder', testid: 'files-folder', dataset: { folder } },
        h('header', { class: 'files-folder-head' },
          icon('folder', { size: 16 }),
          h('h3', { class: 'files-folder-name', testid: 'files-folder-name' }, folder ? folder.split('/').join(' / ') : 'Not in a folder'),
          h('span', { class: 'muted files-folder-count' }, `${items.length} file${items.length === 1 ? '' : 's'}`),
          h('button', {
            type: 'button', class: 'btn btn-ghost btn-small files-folder-upload', testid: 'files-folder-upload',
            title: folder ? `Upload into ${folder}` : 'Upload without a folder',
            onclick: () => { folderInput.value = folder; fileInput.click(); },
          }, icon('upload', { size: 14 }), 'Upload here'),
          folder && app.isInstructor(roomId) ? folderActions(folder) : null),
        h('ul', { class: 'files-items' }, items.map((f) => renderFile(f))));
    }));
  }

  function renderFile(f) {
    const owner = app.store.room(roomId).displayName(f.owner) || (f.owner === app.me.id ? app.me.display_name : null);
    return h('li', { class: 'files-item', testid: 'files-item', dataset: { fileId: f.id, category: f.category } },
      signedLink(app.files, f, { class: 'files-download', testid: 'files-download', title: `Download ${f.name}` },
        icon('file', { size: 17 }), h('span', { class: 'file-name', testid: 'file-name' }, f.name)),
      h('span', { class: 'files-item-meta muted' },
        h('span', { class: 'file-size', testid: 'file-size' }, formatSize(f.size)),
        owner ? h('span', {}, owner) : null,
        h('time', { datetime: f.created_at, title: formatFullTime(f.created_at) }, formatTime(f.created_at))),
      f.owner === app.me.id || app.isInstructor(roomId) ? fileActions(f) : null);
  }

  function fileActions(f) {
    return h('span', { class: 'files-actions' },
      h('button', { type: 'button', class: 'act', testid: 'file-rename', title: `Rename ${f.name}`, onclick: () => renameFile(f) }, 'Rename'),
      h('button', { type: 'button', class: 'act', testid: 'file-move', title: `Move ${f.name} to another folder`, onclick: () => moveFile(f) }, 'Move'),
      h('button', { type: 'button', class: 'act act-danger', testid: 'file-delete', title: `Delete ${f.name}`, onclick: () => deleteFile(f) }, 'Delete'));
  }

  function folderActions(folder) {
    return h('span', { class: 'files-actions' },
      h('button', { type: 'button', class: 'act', testid: 'folder-rename', title: `Rename ${folder}`, onclick: () => renameFolder(folder) }, 'Rename'),
      h('button', { type: 'button', class: 'act', testid: 'folder-move', title: `Move ${folder} into another folder`, onclick: () => moveFolder(folder) }, 'Move'),
      h('button', { type: 'button', class: 'act act-danger', testid: 'folder-delete', title: `Delete ${folder} and everything in it`, onclick: () => deleteFolder(folder) }, 'Delete'));
  }

  function folderNames() {
    return [...new Set(current.map((f) => f.folder).filter(Boolean))].sort(byName.compare);
  }

  /** Run a change, say how it went, and list the files again. */
  async function change(doing, done) {
    note.hidden = false;
    note.className = 'form-note';
    try {
      await doing();
      note.textContent = done;
    } catch (err) {
      note.className = 'form-note error';
      note.textContent = err.message;
    }
    if (!destroyed) load();
  }

  async function renameFile(f) {
    const dot = f.name.lastIndexOf('.');
    const name = await askText({ title: 'Rename file', text: f.name, label: 'New name', value: f.name,
      select: [0, dot > 0 ? dot : f.name.length], confirmLabel: 'Rename' });
    if (name === null || name === f.name) return;
    await change(async () => {
      const { file } = await api.request('PATCH', `/api/files/${encodeURIComponent(f.id)}`, { name });
      app.files.forget(f.id);
      app.files.remember([file]);
    }, `Renamed to “${name}”.`);
  }

  async function moveFile(f) {
    const folder = await askText({ title: 'Move file', text: f.name, label: 'To folder (empty: not in a folder)', value: f.folder,
      options: folderNames(), allowEmpty: true, confirmLabel: 'Move', placeholder: 'e.g. week 2/labs' });
    if (folder === null || folder === f.folder) return;
    await change(() => api.request('POST', `/api/files/${encodeURIComponent(f.id)}/move`, { folder }),
      `Moved “${f.name}” to ${folder ? `“${folder}”` : 'the top level'}.`);
  }

  async function deleteFile(f) {
    const ok = await confirmAction({ title: 'Delete this file?', text: `“${f.name}” is deleted for everyone, and its links stop working. This cannot be undone.`, confirmLabel: 'Delete' });
    if (!ok) return;
    await change(async () => {
      await api.request('DELETE', `/api/files/${encodeURIComponent(f.id)}`);
      app.files.forget(f.id);
    }, `Deleted “${f.name}”.`);
  }

  function moveFolderTo(folder, to) {
    return change(() => api.request('POST', '/api/folders/move', { room: roomId, folder, to }), `Moved “${folder}” to “${to}”.`);
  }

  async function renameFolder(folder) {
    const cut = folder.lastIndexOf('/');
    const parent = cut >= 0 ? folder.slice(0, cut + 1) : '';
    const name = await askText({ title: 'Rename folder', text: folder, label: 'New name', value: folder.slice(cut + 1), confirmLabel: 'Rename' });
    if (name === null || parent + name === folder) return;
    await moveFolderTo(folder, parent + name);
  }

  async function moveFolder(folder) {
    const base = folder.slice(folder.lastIndexOf('/') + 1);
    const others = folderNames().filter((n) => n !== folder && !n.startsWith(`${folder}/`));
    const into = await askText({ title: 'Move folder', text: folder, label: 'Into folder (empty: the top level)', value: '',
      options: others, allowEmpty: true, confirmLabel: 'Move', placeholder: 'e.g. archive' });
    if (into === null) return;
    const to = into ? `${into.replace(/\/+$/, '')}/${base}` : base;
    if (to !== folder) await moveFolderTo(folder, to);
  }

  async function deleteFolder(folder) {
    const n = current.filter((f) => f.folder === folder || f.folder.startsWith(`${folder}/`)).length;
    const ok = await confirmAction({ title: 'Delete this folder?',
      text: `“${folder}” and the ${n} file${n === 1 ? '' : 's'} in it (subfolders included) are deleted for everyone, and their links stop working. This cannot be undone.`,
      confirmLabel: `Delete ${n} file${n === 1 ? '' : 's'}` });
    if (!ok) return;
    await change(() => api.request('POST', '/api/folders/delete', { room: roomId, folder }), `Deleted “${folder}” and its ${n} file${n === 1 ? '' : 's'}.`);
  }

  return dialog;
}
