// The people panel: who is online in the room, everyone else, the instructors' "add member" form, and their Remove and
// Ban on each member (each asks first; a ban keeps them from being added back, moderation.js).
//
// Right panel: who is online in the room, everyone else, and (for room instructors) the
// "add member by username" box with suggestions from /api/users.

import * as api from '../api.js';
import { h, append, avatarFor } from '../dom.js';
import { createRosterBox } from './lms.js';
import { callPerson } from './call.js';
import { icon } from '../icons.js';

const STATUS_LABEL = { online: 'Online', away: 'Away', busy: 'Busy' };

export function createMembersPanel(app, roomId) {
  const r = app.store.room(roomId);
  const onlineList = h('ul', { class: 'people-list', testid: 'online-list', 'aria-label': 'Online now' });
  const offlineList = h('ul', { class: 'people-list offline', testid: 'offline-list', 'aria-label': 'Offline' });
  const onlineHead = h('h3', { class: 'panel-subtitle' });
  const offlineHead = h('h3', { class: 'panel-subtitle' });
  const addForm = createAddMember(app, roomId);
  const roster = createRosterBox(app, roomId); // LMS course rooms (lms.js)
  const confirming = new Map(); // user id → 'remove' | 'ban' awaiting confirmation
  const note = h('p', { class: 'form-note', testid: 'member-action-note', 'aria-live': 'polite' });

  const el = h('div', { class: 'panel-inner' },
    h('h2', { class: 'panel-title' }, 'People'),
    addForm.el,
    roster.el,
    note,
    onlineHead, onlineList,
    offlineHead, offlineList);

  function person(member, online) {
    const { user, role } = member;
    const isMe = user.id === app.me.id;
    const status = online ? (r.status.get(user.id) || 'online') : 'offline';
    return h('li', { class: 'person', dataset: { userId: user.id, status }, testid: 'person' },
      append(avatarFor(user, { cls: 'avatar-sm' }), [h('span', { class: `presence-dot ${status}` })]),
      h('span', { class: 'person-text' },
        h('span', { class: 'person-name' }, user.display_name || user.username),
        h('span', { class: 'person-sub' },
          [role === 'instructor' ? 'Instructor' : null, isMe ? 'you' : null].filter(Boolean).join(' · '))),
      h('span', { class: 'sr-only' }, `, ${STATUS_LABEL[status] || 'Offline'}`),
      withCall(memberActions(member, isMe), user, isMe));
  }

  /** "Call" on another person (not in a direct room, whose header has Start call): their direct room, then a call that rings them. */
  function withCall(actions, user, isMe) {
    if (isMe || !user.username || app.rooms.get(roomId)?.kind === 'direct') return actions;
    const name = user.display_name || user.username;
    const call = h('button', {
      type: 'button', class: 'act act-call', testid: 'call-person', title: `Call ${name}`, 'aria-label': `Call ${name}`,
      onclick: async () => {
        call.disabled = true;
        try {
          await callPerson(app, user);
        } catch (err) {
          note.textContent = `Could not call ${name}: ${err.message}`;
        } finally {
          call.disabled = false;
        }
      },
    }, icon('phone', { size: 14 }));
    if (!actions) return h('span', { class: 'person-actions' }, call);
    actions.prepend(call);
    return actions;
  }

  /** Remove and Ban (room instructors, on others; Ban not on instructors; nothing in direct rooms). */
  function memberActions(member, isMe) {
    const { user, role } = member;
    if (isMe || !role || !app.isInstructor(roomId) || app.rooms.get(roomId)?.kind === 'direct') return null;
    const name = user.display_name || user.username;
    const asking = confirming.get(user.id);
    if (asking) {
      return h('span', { class: 'person-actions confirming' },
        h('span', { class: 'confirm-text' }, asking === 'ban' ? `Ban ${name}?` : `Remove ${name}?`),
        h('button', { type: 'button', class: 'act act-danger', testid: `confirm-${asking}`, onclick: () => act(user, asking) },
          asking === 'ban' ? 'Ban' : 'Remove'),
        h('button', { type: 'button', class: 'act', onclick: () => { confirming.delete(user.id); render(); } }, 'Cancel'));
    }
    const ask = (what) => { confirming.set(user.id, what); render(); };
    return h('span', { class: 'person-actions' },
      h('button', { type: 'button', class: 'act', testid: 'remove-member', title: `Remove ${name} from this room`, onclick: () => ask('remove') }, 'Remove'),
      role === 'instructor' ? null : h('button', {
        type: 'button', class: 'act act-danger', testid: 'ban-member', title: `Remove ${name} and keep them from being added back`, onclick: () => ask('ban'),
      }, 'Ban'));
  }

  async function act(user, what) {
    confirming.delete(user.id);
    const name = user.display_name || user.username;
    try {
      if (what === 'ban') await app.moderation.ban(roomId, user.id);
      else await app.moderation.remove(roomId, user.id);
      note.textContent = what === 'ban' ? `${name} was banned from this room.` : `${name} was removed from this room.`;
      await app.refreshMembers(roomId).catch((err) => console.warn('members refresh failed', err));
    } catch (err) {
      note.textContent = `Could not ${what} ${name}: ${err.message}`;
    }
    render();
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
  return { el, destroy: () => { offs.forEach((off) => off()); addForm.destroy(); roster.destroy(); } };
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
