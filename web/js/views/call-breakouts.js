// The instructors' breakout rooms in the people panel: split the call (a number of groups, dealt at random, then
// people dragged between the groups' columns or moved with a select, an optional timer), then the open groups with Join (visit), a broadcast box, the time
// left and End (call/breakouts.js).

import { h } from '../dom.js';
import { icon } from '../icons.js';

/** {el, destroy()}: shown to the room's instructors while in a call. */
export function createBreakoutsSection(app) {
  const calls = app.calls;
  const bk = calls.breakouts;
  let formOpen = false;
  let assignment = new Map(); // user id → group index (0-based), for the form
  let groupCount = 2; // the form's number of groups
  const el = h('div', { class: 'call-breakouts', testid: 'breakouts', hidden: true });
  const note = h('p', { class: 'form-note', 'aria-live': 'polite' });
  let tick = null;

  function names(members) {
    const room = calls.session && app.store.room(calls.session.room);
    return members.map((id) => room?.displayName(String(id)) || [...calls.participants.values()].find((p) => String(p.user?.id) === String(id))?.user?.display_name || 'Someone');
  }

  function students() {
    const seen = new Map();
    for (const p of calls.participants.values()) {
      if (!p.recorder && p.user?.role !== 'instructor') seen.set(String(p.user.id), p.user.display_name);
    }
    return [...seen].map(([id, name]) => ({ id, name }));
  }

  function deal(count) {
    const list = students().map((s) => s.id).sort(() => Math.random() - 0.5);
    groupCount = count;
    assignment = new Map(list.map((id, i) => [id, i % count]));
  }

  /** Redraw the form, keeping the minutes typed so far. */
  function redraw() {
    const minutes = el.querySelector('[data-testid=breakout-minutes]')?.value || '';
    render();
    const again = el.querySelector('[data-testid=breakout-minutes]');
    if (again) again.value = minutes;
  }

  /** Put user `id` in group `group` (0-based). */
  function move(id, group) {
    assignment.set(id, group);
    redraw();
  }

  function form() {
    const count = h('select', { class: 'select-small', testid: 'breakout-count', 'aria-label': 'Number of groups',
      onchange: () => { deal(Number(count.value)); redraw(); } },
    ...[2, 3, 4, 5, 6, 8, 10].map((n) => h('option', { value: String(n) }, `${n} groups`)));
    count.value = String(groupCount);
    const minutes = h('input', { type: 'number', min: '0', step: 'any', class: 'input-small', testid: 'breakout-minutes',
      placeholder: 'Minutes (optional)', 'aria-label': 'Minutes (optional)' });
    // One column per group; people are dragged between columns (HTML5 drag and drop) or, from the keyboard, moved
    // with the group select on their card.
    const columns = Array.from({ length: groupCount }, (_, i) => {
      const list = h('ul', { class: 'breakout-people', 'aria-label': `Group ${i + 1}` });
      const column = h('li', { class: 'breakout-column', testid: 'breakout-column', dataset: { group: String(i) },
        ondragover: (ev) => { ev.preventDefault(); ev.dataTransfer.dropEffect = 'move'; column.classList.add('drop-target'); },
        ondragleave: () => column.classList.remove('drop-target'),
        ondrop: (ev) => {
          ev.preventDefault();
          const id = ev.dataTransfer.getData('text/plain');
          // Redraw after the drag has ended: removing the dragged card inside its own drop leaves
          // Chromium's drag session (and its dragend) hanging.
          if (assignment.has(id)) setTimeout(() => move(id, i), 0);
        } },
      h('span', { class: 'breakout-column-name' }, `Group ${i + 1}`), list);
      return { column, list };
    });
    const present = students();
    for (const s of present) { // someone who joined since the deal goes to the smallest group
      if (assignment.has(s.id)) continue;
      const sizes = Array.from({ length: groupCount }, (_, i) => [...assignment.values()].filter((g) => g === i).length);
      assignment.set(s.id, sizes.indexOf(Math.min(...sizes)));
    }
    for (const s of present) {
      const group = Math.min(assignment.get(s.id), groupCount - 1);
      const pick = h('select', { class: 'select-small', testid: 'breakout-assign', dataset: { userId: s.id }, 'aria-label': `${s.name}'s group`,
        onchange: () => move(s.id, Number(pick.value)) },
      ...Array.from({ length: groupCount }, (_, i) => h('option', { value: String(i) }, `Group ${i + 1}`)));
      pick.value = String(group);
      columns[group].list.append(h('li', { class: 'breakout-person', testid: 'breakout-person', draggable: 'true', dataset: { userId: s.id },
        title: 'Drag to another group',
        ondragstart: (ev) => { ev.dataTransfer.setData('text/plain', s.id); ev.dataTransfer.effectAllowed = 'move'; } },
      h('span', { class: 'person-name' }, s.name), pick));
    }
    const rows = columns.map((c) => c.column);
    const start = h('button', { type: 'button', class: 'act', testid: 'breakout-start', onclick: async () => {
      const groups = Array.from({ length: groupCount }, () => []);
      const here = new Set(students().map((s) => s.id)); // not those who left since
      for (const [id, g] of assignment) if (groups[g] && here.has(id)) groups[g].push(id);
      const empty = groups.map((g, i) => (g.length ? null : `Group ${i + 1}`)).filter(Boolean);
      if (empty.length) { // opening rooms nobody is in helps nobody, and renumbering them would surprise
        note.textContent = `${empty.join(', ')} ${empty.length > 1 ? 'are' : 'is'} empty: drag someone there or choose fewer groups.`;
        return;
      }
      const secs = Math.round(Number(minutes.value || 0) * 60);
      try {
        await bk.start({ groups, durationS: secs || null });
        formOpen = false;
        note.textContent = '';
      } catch (err) {
        note.textContent = `Could not open breakout rooms: ${err.message}`;
      }
      render();
    } }, 'Open breakout rooms');
    return [h('div', { class: 'call-rules' }, count, minutes, h('button', { type: 'button', class: 'act', testid: 'breakout-shuffle',
      onclick: () => { deal(Number(count.value)); redraw(); } }, 'Shuffle')),
    h('ul', { class: 'breakout-assign', testid: 'breakout-board' }, ...rows), start];
  }

  function statusText(current) {
    const endsAt = current.ends_at ? Date.parse(current.ends_at) : null;
    const left = endsAt ? Math.max(0, Math.round((endsAt - Date.now()) / 1000)) : null;
    return `Breakout rooms — ${current.groups.length} groups${left != null ? ` · ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} left` : ''}`;
  }

  /** Every second of a timed breakout: only the time left changes (a redraw would empty the broadcast box). */
  function countdown() {
    const current = bk.current;
    const status = el.querySelector('[data-testid=breakout-status]');
    if (!current || !status || el.hidden) return;
    status.textContent = statusText(current);
    tick = setTimeout(countdown, 1000);
  }

  function open(current) {
    const text = h('input', { type: 'text', class: 'input-small', testid: 'breakout-broadcast-text', placeholder: 'Message to every group' });
    const visiting = calls.session && current.groups.some((g) => String(g.session) === String(calls.session.id));
    return [
      h('p', { class: 'panel-subtitle', testid: 'breakout-status' }, statusText(current)),
      h('ul', { class: 'people-list' }, ...current.groups.map((g) => h('li', { class: 'person', testid: 'breakout-group' },
        h('span', { class: 'person-text' }, h('span', { class: 'person-name' }, g.name), h('span', { class: 'person-sub' }, names(g.members).join(', '))),
        h('button', { type: 'button', class: 'act', testid: 'breakout-visit', onclick: () => bk.visit(g) }, 'Join')))),
      h('form', { class: 'call-rules', onsubmit: async (ev) => {
        ev.preventDefault();
        if (!text.value.trim()) return;
        try {
          await bk.broadcast(text.value.trim());
          note.textContent = 'Sent to every group.';
          text.value = '';
        } catch (err) {
          note.textContent = `Could not send: ${err.message}`;
        }
      } }, text, h('button', { type: 'submit', class: 'act', testid: 'breakout-broadcast' }, 'Send to all')),
      visiting ? h('button', { type: 'button', class: 'act', testid: 'breakout-back', onclick: () => bk.backToMain() }, 'Back to the main call') : null,
      h('button', { type: 'button', class: 'act act-danger', testid: 'breakout-end', onclick: async () => {
        try {
          await bk.end();
        } catch (err) {
          note.textContent = `Could not end them: ${err.message}`;
        }
      } }, 'End breakout rooms'),
    ];
  }

  function render() {
    clearTimeout(tick);
    el.hidden = !calls.inCall || calls.state !== 'live' || !calls.isInstructor && !bk.current;
    if (el.hidden) return;
    if (!calls.isInstructor) {
      el.replaceChildren();
      el.hidden = true;
      return;
    }
    const current = bk.current;
    let body;
    if (current) {
      body = open(current);
      if (current.ends_at) tick = setTimeout(countdown, 1000);
    } else if (formOpen) {
      body = form();
    } else {
      body = [h('button', { type: 'button', class: 'act', testid: 'breakout-open-form', disabled: !students().length,
        title: students().length ? 'Split the class into groups' : 'Nobody to split yet',
        onclick: () => { formOpen = true; deal(2); render(); } }, icon('group', { size: 14 }), 'Breakout rooms')];
    }
    el.replaceChildren(...body, note);
  }

  const offs = [calls.on('breakouts', render), calls.on('participants', () => { if (!formOpen) render(); }), calls.on('state', render)];
  render();
  return { el, destroy: () => { clearTimeout(tick); offs.forEach((off) => off()); } };
}
