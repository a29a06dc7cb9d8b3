// Dropping files on the chat: the overlay while files are dragged over it; each dropped file is uploaded and posted.
//
// A file dropped anywhere else on the page must not replace the app with the file.

import { h } from '../dom.js';
import { icon } from '../icons.js';

/** {el (the overlay), listen(chatEl), setRoomName(name), destroy()}; `canDrop()`: may we post here now? */
export function createFileDrop(app, roomId, canDrop) {
  const text = h('span', {});
  const el = h('div', { class: 'drop-overlay', testid: 'drop-overlay', hidden: true, 'aria-hidden': 'true' },
    h('div', { class: 'drop-overlay-card' }, icon('upload', { size: 28 }), text));
  let dragDepth = 0;
  let chat = null;
  const carriesFiles = (ev) => [...(ev.dataTransfer?.types || [])].includes('Files');

  function listen(chatEl) {
    chat = chatEl;
    chat.addEventListener('dragenter', (ev) => {
      if (!carriesFiles(ev) || !canDrop()) return;
      ev.preventDefault();
      dragDepth += 1;
      el.hidden = false;
    });
    chat.addEventListener('dragover', (ev) => {
      if (!carriesFiles(ev) || !canDrop()) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = 'copy';
    });
    chat.addEventListener('dragleave', (ev) => {
      if (!carriesFiles(ev)) return;
      dragDepth = Math.max(0, dragDepth - 1);
      if (!dragDepth) el.hidden = true;
    });
    chat.addEventListener('drop', (ev) => {
      dragDepth = 0;
      el.hidden = true;
      if (!carriesFiles(ev) || !canDrop()) return;
      ev.preventDefault();
      if (ev.dataTransfer.files.length) app.attach(roomId, ev.dataTransfer.files);
    });
    document.addEventListener('dragover', blockStrayDrop);
    document.addEventListener('drop', blockStrayDrop);
  }

  function blockStrayDrop(ev) {
    if (carriesFiles(ev) && !chat.contains(ev.target)) ev.preventDefault();
  }

  return {
    el,
    listen,
    setRoomName(name) {
      text.textContent = `Drop files to share them in ${name}`;
    },
    destroy() {
      document.removeEventListener('dragover', blockStrayDrop);
      document.removeEventListener('drop', blockStrayDrop);
    },
  };
}
