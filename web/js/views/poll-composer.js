// The "New poll" dialog (instructors): a question, 2–10 options (tick the correct ones for a quiz), single or multiple choice, anonymous, results shown to everyone.

import { h, randomId } from '../dom.js';
import { icon } from '../icons.js';
import { openModal } from './modal.js';

const MIN_OPTIONS = 2;
const MAX_OPTIONS = 10;

export function openPollComposer(app, roomId) {
  const question = h('textarea', { id: 'poll-question', class: 'poll-question-input', testid: 'poll-question-input', rows: '2', maxlength: '500', required: true });
  const options = h('ol', { class: 'poll-option-inputs' });
  const multiple = h('input', { type: 'checkbox', id: 'poll-multiple', testid: 'poll-multiple' });
  const anonymous = h('input', { type: 'checkbox', id: 'poll-anonymous', testid: 'poll-anonymous' });
  const publicResults = h('input', { type: 'checkbox', id: 'poll-public', testid: 'poll-public' });
  const note = h('p', { class: 'form-note', role: 'alert' });
  const add = h('button', { type: 'button', class: 'btn btn-ghost btn-small', testid: 'poll-add-option', onclick: () => addOption('') }, '+ Add option');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'poll-submit' }, 'Ask');
  const cmid = `poll-${randomId()}`; // one poll however often Ask is pressed (a resend returns it)

  function addOption(text) {
    if (options.children.length >= MAX_OPTIONS) return;
    const row = h('li', { class: 'poll-option-input' },
      h('input', { type: 'text', class: 'poll-option-text-input', testid: 'poll-option-input', maxlength: '200', value: text, 'aria-label': 'Option' }),
      h('label', { class: 'poll-correct-toggle', title: 'Mark as the correct answer (a quiz)' },
        h('input', { type: 'checkbox', testid: 'poll-option-correct' }), 'correct'),
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Remove option', onclick: () => { if (options.children.length > MIN_OPTIONS) row.remove(); refresh(); } },
        icon('close', { size: 14 })));
    options.append(row);
    refresh();
  }

  function refresh() {
    add.hidden = options.children.length >= MAX_OPTIONS;
  }

  const form = h('form', { class: 'poll-composer', onsubmit: (ev) => { ev.preventDefault(); create(); } },
    h('label', { for: 'poll-question', class: 'field-label' }, 'Question'),
    question,
    h('span', { class: 'field-label' }, 'Options'),
    options,
    add,
    h('div', { class: 'poll-flags' },
      h('label', { for: 'poll-multiple' }, multiple, 'Several answers allowed'),
      h('label', { for: 'poll-anonymous' }, anonymous, 'Anonymous (nobody sees who chose what)'),
      h('label', { for: 'poll-public' }, publicResults, 'Show results to everyone')),
    h('footer', { class: 'modal-foot' }, note, submit));

  const { close } = openModal({
    testid: 'poll-composer', className: 'poll-modal', titleId: 'poll-composer-title', title: 'New poll',
    subtitle: 'Ask the room; answers and results update live.', closeTestid: 'poll-composer-close', body: [form],
  });
  addOption('');
  addOption('');
  queueMicrotask(() => question.focus());

  async function create() {
    const rows = [...options.children];
    const texts = rows.map((r) => r.querySelector('input[type=text]').value.trim());
    const correct = rows.map((r, i) => (r.querySelector('input[type=checkbox]').checked ? i : -1)).filter((i) => i >= 0);
    if (!question.value.trim()) return fail('Write a question.');
    if (texts.filter(Boolean).length < MIN_OPTIONS || texts.some((t) => !t)) return fail('Fill in every option (at least two).');
    if (!multiple.checked && correct.length > 1) return fail('A one-answer poll has one correct option.');
    submit.disabled = true;
    note.textContent = '';
    try {
      await app.polls.create(roomId, {
        question: question.value.trim(), options: texts, multiple: multiple.checked, anonymous: anonymous.checked,
        results_public: publicResults.checked, correct: correct.length ? correct : null, client_msg_id: cmid,
      });
      close();
    } catch (err) {
      fail(`Could not create the poll: ${err.message}`);
    } finally {
      submit.disabled = false;
    }
  }

  function fail(text) {
    note.className = 'form-note error';
    note.textContent = text;
  }
}
