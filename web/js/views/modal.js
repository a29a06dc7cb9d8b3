// Modal dialogs (Files, Recordings, Attendance): one lifecycle — header with title and Close, backdrop click closes, clean-up on close.

import { h } from '../dom.js';
import { icon } from '../icons.js';

const openDialogs = new Map(); // testid → the open dialog of that kind

/**
 * Open a modal <dialog>, closing the one of the same kind (`testid`) still open. Its header has
 * the `title` (an <h2 id=titleId>), a `subtitle` line and a Close button (`closeTestid`);
 * `body` follows. `onClose()` runs once when it closes (Close, Esc, backdrop), before it is
 * removed. Returns {dialog, summary (the subtitle's <p>), close()}.
 */
export function openModal({ testid, className, titleId, title, subtitle, closeTestid, body = [], onClose = () => {} }) {
  openDialogs.get(testid)?.close();
  const close = () => dialog.close();
  const summary = h('p', { class: 'muted' }, subtitle);
  const dialog = h('dialog', { class: `modal ${className}`, testid, 'aria-labelledby': titleId },
    h('header', { class: 'modal-head' },
      h('div', { class: 'modal-heading' }, h('h2', { id: titleId }, title), summary),
      h('button', { type: 'button', class: 'icon-btn', testid: closeTestid, 'aria-label': 'Close', onclick: close }, icon('close', { size: 18 }))),
    ...body);
  dialog.addEventListener('close', () => {
    onClose();
    dialog.remove();
    if (openDialogs.get(testid) === dialog) openDialogs.delete(testid);
  });
  dialog.addEventListener('click', (ev) => { if (ev.target === dialog) close(); }); // backdrop
  document.body.append(dialog);
  openDialogs.set(testid, dialog);
  dialog.showModal();
  return { dialog, summary, close };
}
