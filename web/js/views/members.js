// The people panel: who is online in the room, everyone else, and the instructors' "add member" form.
//
// Right panel: who is online in the room, everyone else, and (for room instructors) the
// "add member by username" box with suggestions from /api/users.

import * as api from '../api.js';
import { h, initials, hueFor } from '../dom.js';

const STATUS_LABEL = { online: 'Online', away: 'Away', busy: 'Busy' };

export function createMembersPanel(app, roomId) {
  const r = app.store.room(roomId);
  const onlineList = h('ul', { class: 'people-list', testid: 'online-list', 'aria-label': 'Online now' });
  const offlineList = h('ul', { class: 'people-list offline', testid: 'offline-list', 'aria-label': 'Offline' });
  const onlineHead = h('h3', { class: 'panel-subtitle' });
  const offlineHead = h('h3', { class: 'panel-subtitle' });
  const addForm = createAddMember(app, roomId);

  const el = h('div', { class: 'panel-inner' },
    h('h2', { class: 'panel-title' }, 'People'),
    addForm.el,
    onlineHead, onlineList,
    offlineHead, offlineList);

  function person(member, online) {
    const { user, role } = member;
    const isMe = user.id === app.me.id;
    const status = online ? (r.status.get(user.id) || 'online') : 'offline';
    return h('li', { class: 'person', dataset: { userId: user.id, status }, testid: 'person' },
      h('span', { class: 'avatar avatar-sm', style: `--hue:${hueFor(user.id)}`, 'aria-hidden': 'true' },
        initials(user.display_name || user.username),
        h('span', { class: `presence-dot ${status}` })),
      h('span', { class: 'person-text' },
        h('span', { class: 'person-name' }, user.display_name || user.username),
        h('span', { class: 'person-sub' },
          [role === 'instructor' ? 'Instructor' : null, isMe ? 'you' : null].filter(Boolean).join(' · '))),
      h('span', { class: 'sr-only' }, `, ${STATUS_LABEL[status] || 'Offline'}`));
  }

  function render() {
    const members = [...r.members.values()];
    // Online users we have no member record for yet (just added) still show by id.
    for (const uid of r.online) if (!r.members.has(uid)) members.push({ user: { id: uid, display_name: 'New member' }, role: null });
    const byName = (a, b) => (a.user.display_name || '').localeCompare(b.user.display_name || '');
    const online = members.filter((m) => r.online.has(m.user.id)).sort(byName);
    const offline = members.filter((m) => !r.online.has(m.user.id)).sort(byName);
    onlineHead.textContent = `Online — ${online.length}`;
    offlineHead.textContent = `Offline — ${offline.length}`;
    onlineList.replaceChildren(...online.map((m) => person(m, true)));
    offlineList.replaceChildren(...offline.map((m) => person(m, false)));
    offlineHead.hidden = !offline.length;
    offlineList.hidden = !offline.length;
    addForm.el.hidden = !app.isInstructor(roomId) || app.rooms.get(roomId)?.kind === 'direct';
  }

  const offs = [
    app.store.on('meta', (ev) => { if (ev.room === roomId && (ev.part === 'members' || ev.part === 'online')) render(); }),
    app.on('rooms', () => { addForm.el.hidden = !app.isInstructor(roomId) || app.rooms.get(roomId)?.kind === 'direct'; }),
  ];
  render();
  return { el, destroy: () => { offs.forEach((off) => off()); addForm.destroy(); } };
}

function createAddMember(app, roomId) {
  const listId = `user-suggestions-${roomId}`;
  const input = h('input', {
    id: 'add-member-username', testid: 'add-member-input', list: listId, autocomplete: 'off',
    autocapitalize: 'none', spellcheck: 'false', placeholder: 'username',
  });
  const suggestions = h('datalist', { id: listId });
  const role = h('select', { id: 'add-member-role', testid: 'add-member-role', 'aria-label': 'Role in this room' },
    h('option', { value: 'student' }, 'Student'),
    h('option', { value: 'instructor' }, 'Instructor'));
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-small', testid: 'add-member-submit' }, 'Add');
  const note = h('p', { class: 'form-note', role: 'status' });

  const el = h('form', { class: 'add-member', 'aria-label': 'Add a member', onsubmit: onSubmit, hidden: true },
    h('label', { for: 'add-member-username' }, 'Add by username'),
    h('div', { class: 'add-member-row' }, input, role, submit),
    suggestions,
    note);

  let searchTimer = null;
  let abort = null;
  input.addEventListener('input', () => {
    clearTimeout(searchTimer);
    const prefix = input.value.trim().replace(/^@/, '');
    if (!prefix) return suggestions.replaceChildren();
    searchTimer = setTimeout(async () => {
      abort?.abort();
      abort = new AbortController();
      try {
        const { users = [] } = await api.searchUsers(prefix, 8, { signal: abort.signal });
        const members = app.store.room(roomId).members;
        suggestions.replaceChildren(...users
          .filter((u) => !members.has(u.id))
          .map((u) => h('option', { value: u.username }, u.display_name ? `${u.display_name} (@${u.username})` : u.username)));
      } catch (err) {
        if (err.name !== 'AbortError') console.warn('user search failed', err);
      }
    }, 200);
  });

  async function onSubmit(ev) {
    ev.preventDefault();
    const username = input.value.trim().replace(/^@/, '');
    if (!username) return;
    submit.disabled = true;
    note.className = 'form-note';
    note.textContent = 'Adding…';
    try {
      const member = await app.addMember(roomId, username, role.value);
      const name = member?.user?.display_name || username;
      note.textContent = `${name} was added as ${role.value === 'instructor' ? 'an instructor' : 'a student'}.`;
      input.value = '';
      role.value = 'student';
      suggestions.replaceChildren();
    } catch (err) {
      note.className = 'form-note error';
      note.textContent = err.status === 404 ? `No user called “${username}”.` : `Could not add ${username}: ${err.message}`;
    } finally {
      submit.disabled = false;
    }
  }

  return { el, destroy: () => { clearTimeout(searchTimer); abort?.abort(); } };
}
