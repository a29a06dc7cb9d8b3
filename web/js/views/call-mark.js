// Marks on a call's recording: the instructors' Mark button and label form, and the toast everyone sees when one is added.

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { formatDuration } from '../recordings.js';
import { controlButton, setControl } from './call-controls.js';

const TOAST_MS = 5000;

/** The Mark button and its form: {button, form, render({live, instructor})}. */
export function createMarkForm(calls) {
  const button = controlButton('mark-recording', () => open());
  button.el.setAttribute('aria-controls', 'mark-form');
  button.el.setAttribute('aria-expanded', 'false');
  // Mark: a label for this moment of the recording (chapters in the class video).
  const input = h('input', {
    id: 'mark-label-input', testid: 'mark-label-input', maxlength: '200', autocomplete: 'off', required: true,
    placeholder: 'e.g. Newton’s second law',
  });
  const error = h('span', { class: 'mark-error', testid: 'mark-error', role: 'alert' });
  const save = h('button', { type: 'submit', class: 'btn btn-primary btn-small', testid: 'mark-save' }, 'Add mark');
  const form = h('form', { id: 'mark-form', class: 'mark-form', testid: 'mark-form', hidden: true, 'aria-label': 'Mark this moment' },
    h('label', { for: 'mark-label-input' }, 'Mark this moment'), input, save,
    h('button', { type: 'button', class: 'btn btn-ghost btn-small', testid: 'mark-cancel', onclick: () => close() }, 'Cancel'),
    error);
  form.addEventListener('submit', (ev) => { ev.preventDefault(); submit(); });
  form.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { ev.preventDefault(); close(); } });

  function open() {
    if (!form.hidden) {
      input.focus();
      return;
    }
    error.textContent = '';
    input.value = '';
    form.hidden = false;
    button.el.classList.add('is-active');
    button.el.setAttribute('aria-expanded', 'true');
    input.focus();
  }

  function close() {
    if (form.hidden) return;
    form.hidden = true;
    button.el.classList.remove('is-active');
    button.el.setAttribute('aria-expanded', 'false');
  }

  async function submit() {
    const label = input.value.trim();
    if (!label) {
      error.textContent = 'Type a label for this moment.';
      input.focus();
      return;
    }
    save.disabled = true;
    error.textContent = '';
    try {
      await calls.addMark(label);
      close();
    } catch (err) {
      error.textContent = err.code === 'conflict' ? 'Marks can be added only while recording.' : `Could not add the mark: ${err.message}`;
    } finally {
      save.disabled = false;
    }
  }

  /** Marks can be added while recording, by instructors; otherwise the form closes. */
  function render({ live, instructor }) {
    const canMark = live && calls.recording?.status === 'recording';
    setControl(button, {
      icon: 'bookmark', label: 'Mark', disabled: !canMark, active: !form.hidden,
      title: canMark ? 'Mark this moment of the recording (a chapter in the class video)' : 'Marks can be added while recording',
    });
    button.el.hidden = !instructor;
    if (!canMark || !instructor) close();
  }

  return { button, form, render };
}

/** "Ana marked at 1:05: <label>" for a few seconds: {el, show({mark}), destroy()}. */
export function createMarkToast() {
  const el = h('div', { class: 'stage-toast', testid: 'mark-toast', role: 'status', 'aria-live': 'polite', hidden: true });
  let timer = null;

  function show({ mark }) {
    const by = mark.by?.display_name;
    const at = typeof mark.offset_s === 'number' ? ` at ${formatDuration(mark.offset_s)}` : '';
    el.replaceChildren(icon('bookmark', { size: 15 }), h('span', null, `${by ? `${by} marked` : 'Marked'}${at}: `, h('strong', null, mark.label)));
    el.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(() => { el.hidden = true; }, TOAST_MS);
  }

  return { el, show, destroy: () => clearTimeout(timer) };
}
