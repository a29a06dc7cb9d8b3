// A poll in the message list: the question, options to tick and Vote, live result bars (instructors, or everyone once shared), the instructor's Close / Re-open / Show results / CSV.
//
// One card per poll message, kept across re-renders of the message (chat-messages.js) so a
// half-made choice survives a live update. What the card shows comes from the message's `poll`
// field (the same for everyone) and this user's view in app.polls (own answer, private counts,
// ballots), which it asks for when first shown.

import { h, replaceChildren } from '../dom.js';
import { icon } from '../icons.js';

/** {el, update(message), destroy()} for a message of kind `poll`. */
export function createPollCard(app, message, { flash }) {
  let m = message;
  let selection = null; // Set of option indexes the user ticked, null until they touch one
  let busy = false;
  let csvUrl = null;
  const el = h('div', { class: 'poll-card', testid: 'poll-card', dataset: { messageId: m.id } });
  const off = app.polls.on('change', (id) => { if (id === m.id) render(); });

  function state() {
    const p = m.poll || {};
    const v = app.polls.ensure(m.id);
    const instructor = app.isInstructor(m.room);
    return {
      p, v, instructor,
      closed: !!(v ? v.closed : p.closed),
      counts: v?.counts ?? p.counts ?? null,
      voters: v?.voters ?? p.voters ?? null,
      correct: v?.correct ?? p.correct ?? null,
      mine: v?.my_choices || [],
      ballots: instructor ? v?.ballots || null : null,
    };
  }

  function render() {
    const s = state();
    const { p } = s;
    const chosen = selection ?? new Set(s.mine);
    const total = s.voters || 0;
    const meta = [p.multiple ? 'Several answers allowed' : 'One answer', p.anonymous ? 'Anonymous' : 'Named',
      p.results_public ? 'Results shown to everyone' : 'Results shown to instructors'];
    const options = (p.options || []).map((text, i) => {
      const n = s.counts ? s.counts[i] || 0 : null;
      const pct = n !== null && total ? Math.round((100 * n) / total) : 0;
      const input = h('input', {
        type: p.multiple ? 'checkbox' : 'radio', name: `poll-${m.id}`, value: String(i), testid: 'poll-choice',
        checked: chosen.has(i), disabled: s.closed || busy,
        onchange: () => { pick(i, input.checked, p.multiple, chosen); },
      });
      const right = s.correct?.includes(i);
      const names = s.ballots ? s.ballots.filter((b) => b.choices.includes(i)).map((b) => b.user.display_name) : null;
      const bar = h('span', { class: 'poll-bar-fill' });
      bar.style.width = `${pct}%`;
      return h('li', { class: `poll-option${right ? ' correct' : ''}${s.mine.includes(i) ? ' mine' : ''}`, testid: 'poll-option', dataset: { index: String(i) } },
        h('label', { class: 'poll-option-label' }, input, h('span', { class: 'poll-option-text' }, text),
          right ? h('span', { class: 'poll-correct', testid: 'poll-correct', title: 'Correct answer' }, '✓ correct') : null),
        n !== null ? h('div', { class: 'poll-result' },
          h('span', { class: 'poll-bar', 'aria-hidden': 'true' }, bar),
          h('span', { class: 'poll-count', testid: 'poll-count' }, `${n} · ${pct}%`)) : null,
        names && names.length ? h('div', { class: 'poll-voters', testid: 'poll-voters' }, names.join(', ')) : null);
    });
    el.classList.toggle('closed', s.closed);
    replaceChildren(el,
      h('div', { class: 'poll-head' },
        h('span', { class: 'tag tag-poll' }, p.quiz ? 'Quiz' : 'Poll'),
        s.closed ? h('span', { class: 'tag tag-closed', testid: 'poll-closed' }, 'Closed') : null,
        h('span', { class: 'poll-meta' }, meta.join(' · '))),
      h('div', { class: 'poll-question', testid: 'poll-question' }, m.content),
      h('form', { class: 'poll-form', onsubmit: (ev) => { ev.preventDefault(); vote(selection ?? chosen); } },
        h('ol', { class: 'poll-options' }, options),
        h('div', { class: 'poll-foot' },
          h('span', { class: 'poll-status', testid: 'poll-status' }, statusText(s)),
          s.closed ? null : h('button', { type: 'submit', class: 'btn btn-primary btn-small', testid: 'poll-vote', disabled: busy },
            s.mine.length ? 'Change answer' : 'Vote'))),
      s.instructor ? controls(s) : null);
  }

  function controls(s) {
    const act = (label, testid, fn) => h('button', { type: 'button', class: 'btn btn-secondary btn-small', testid, disabled: busy, onclick: fn }, label);
    return h('div', { class: 'poll-controls', role: 'group', 'aria-label': 'Poll controls' },
      s.closed ? act('Re-open', 'poll-reopen', () => run('reopen')) : act('Close', 'poll-close', () => run('close')),
      s.p.results_public
        ? act('Hide results', 'poll-hide', () => run('share', { results_public: false }))
        : act('Show results to everyone', 'poll-share', () => run('share', { results_public: true })),
      act('CSV', 'poll-csv', () => download('option')),
      s.p.anonymous ? null : act('CSV per person', 'poll-csv-voters', () => download('voter')));
  }

  function pick(i, on, multiple, shown) {
    const next = multiple ? new Set(selection ?? shown) : new Set();
    if (on) next.add(i);
    else next.delete(i);
    selection = next;
  }

  async function vote(chosen) {
    const choices = [...chosen].sort((a, b) => a - b);
    if (!choices.length) return flash('Choose an answer first.');
    busy = true;
    render();
    try {
      await app.polls.vote(m.id, choices);
      selection = null;
    } catch (err) {
      flash(`Vote failed: ${err.message}`);
    } finally {
      busy = false;
      render();
    }
  }

  async function run(action, fields) {
    busy = true;
    render();
    try {
      await app.polls.control(m.id, action, fields);
    } catch (err) {
      flash(`Poll: ${err.message}`);
    } finally {
      busy = false;
      render();
    }
  }

  async function download(by) {
    try {
      const blob = await app.polls.csv(m.id, by);
      if (csvUrl) URL.revokeObjectURL(csvUrl);
      csvUrl = URL.createObjectURL(blob);
      const a = h('a', { href: csvUrl, download: `poll-${m.id}-${by === 'voter' ? 'people' : 'results'}.csv`, hidden: true });
      el.append(a);
      a.click();
      a.remove();
    } catch (err) {
      flash(`Download failed: ${err.message}`);
    }
  }

  render();
  return {
    el,
    update(next) {
      m = next;
      render();
    },
    destroy() {
      off();
      if (csvUrl) URL.revokeObjectURL(csvUrl);
    },
  };
}

/** The card's status line: answers so far, the user's own answer, and how they did in a closed quiz. */
function statusText(s) {
  const parts = [];
  if (s.voters !== null) parts.push(s.voters === 1 ? '1 answer' : `${s.voters} answers`);
  if (s.mine.length) parts.push(`Your answer: ${s.mine.map((i) => s.p.options[i]).join(', ')}`);
  else if (!s.closed) parts.push('You have not answered');
  if (s.closed && s.v?.my_correct === true) parts.push('Right!');
  if (s.closed && s.v?.my_correct === false) parts.push('Not quite');
  return parts.join(' · ');
}

/** The composer's "Poll" button (instructors). */
export function pollButton(onclick) {
  return h('button', { type: 'button', class: 'btn btn-ghost btn-small poll-btn', testid: 'new-poll', title: 'Ask the room a question', onclick },
    icon('bookmark', { size: 15 }), 'Poll');
}
