// "Are you sure?" before what cannot be undone (ending a call for everyone, stopping a recording, deleting).

import { h } from '../dom.js';
import { openModal } from './modal.js';

/** Resolves true when the person confirms, false when they cancel or close the dialog. */
export function confirmAction({ title, text, confirmLabel = 'OK', danger = true }) {
  return new Promise((resolve) => {
    let answer = false;
    const ok = h('button', { type: 'button', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, testid: 'confirm-ok',
      onclick: () => { answer = true; modal.close(); } }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', testid: 'confirm-cancel', onclick: () => modal.close() }, 'Cancel');
    const modal = openModal({
      testid: 'confirm-dialog', className: 'confirm-modal', titleId: 'confirm-title', title, subtitle: text,
      closeTestid: 'confirm-close', body: [h('footer', { class: 'modal-foot' }, cancel, ok)],
      onClose: () => resolve(answer),
    });
    ok.focus();
  });
}

/**
 * A confirmation with one choice to make too (a checkbox, `choice` its label, `checked` its
 * start): resolves null when cancelled, else {choice: boolean}. Without `choice` it is
 * confirmAction's dialog.
 */
export function confirmWithChoice({ title, text, confirmLabel = 'OK', choice, checked = false }) {
  return new Promise((resolve) => {
    let answer = null;
    const box = h('input', { type: 'checkbox', testid: 'confirm-choice', id: 'confirm-choice' });
    box.checked = checked;
    const ok = h('button', { type: 'button', class: 'btn btn-danger', testid: 'confirm-ok',
      onclick: () => { answer = { choice: !!choice && box.checked }; modal.close(); } }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', testid: 'confirm-cancel', onclick: () => modal.close() }, 'Cancel');
    const modal = openModal({
      testid: 'confirm-dialog', className: 'confirm-modal', titleId: 'confirm-title', title, subtitle: text,
      closeTestid: 'confirm-close',
      body: [
        choice ? h('label', { class: 'confirm-choice', for: 'confirm-choice' }, box, ' ', choice) : null,
        h('footer', { class: 'modal-foot' }, cancel, ok),
      ].filter(Boolean),
      onClose: () => resolve(answer),
    });
    ok.focus();
  });
}

/**
 * Ask for a line of text (a new name, a folder): resolves the trimmed text, or null when
 * cancelled. `options` fills a suggestion list; `select` is the [start, end) range selected
 * at first (a file name's stem), all of it by default; `allowEmpty` accepts "".
 */
export function askText({ title, text, label, value = '', confirmLabel = 'Save', options = [], select = null, allowEmpty = false, placeholder = '' }) {
  return new Promise((resolve) => {
    let answer = null;
    const listId = 'ask-text-options';
    const input = h('input', { id: 'ask-text-input', testid: 'ask-text-input', autocomplete: 'off', maxlength: '255', placeholder,
      ...(options.length ? { list: listId } : {}) });
    input.value = value;
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const form = h('form', { class: 'ask-text', onsubmit: (ev) => {
      ev.preventDefault();
      const v = input.value.trim();
      if (!v && !allowEmpty) {
        error.textContent = 'This cannot be empty.';
        error.hidden = false;
        return;
      }
      answer = v;
      modal.close();
    } },
    h('label', { for: 'ask-text-input' }, label), input,
    options.length ? h('datalist', { id: listId }, options.map((o) => h('option', { value: o }))) : null,
    error,
    h('footer', { class: 'modal-foot' },
      h('button', { type: 'button', class: 'btn btn-secondary', testid: 'ask-text-cancel', onclick: () => modal.close() }, 'Cancel'),
      h('button', { type: 'submit', class: 'btn btn-primary', testid: 'ask-text-ok' }, confirmLabel)));
    const modal = openModal({
      testid: 'ask-text-dialog', className: 'confirm-modal', titleId: 'ask-text-title', title, subtitle: text || '',
      closeTestid: 'ask-text-close', body: [form], onClose: () => resolve(answer),
    });
    input.focus();
    const [start, end] = select || [0, input.value.length];
    input.setSelectionRange(start, end);
  });
}
