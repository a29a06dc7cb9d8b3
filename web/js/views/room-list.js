// Sidebar: the user's rooms with their last message, time and unread counts, and the "new room" form.

import { h, avatarFor } from '../dom.js';
import { icon } from '../icons.js';
import { previewTime } from '../previews.js';

const KIND_LABEL = { course: 'Course', group: 'Group', direct: 'Direct message' };

export function createRoomList(app, { onNavigate = () => {} } = {}) {
  const list = h('ul', { class: 'room-list', role: 'list', testid: 'room-list' });
  const empty = h('p', { class: 'sidebar-empty muted', hidden: true });
  // Archived rooms (read-only) are hidden unless asked for; the choice is remembered.
  let showArchived = localStorage.getItem('podium.showArchived') === '1';
  const archivedToggle = h('button', {
    type: 'button', class: 'btn btn-ghost btn-small room-archived-toggle', testid: 'toggle-archived', hidden: true,
    onclick: () => {
      showArchived = !showArchived;
      localStorage.setItem('podium.showArchived', showArchived ? '1' : '0');
      render();
    },
  });
  const form = createRoomForm(app, {
    onCreated: (room) => {
      location.hash = `#/rooms/${encodeURIComponent(room.id)}`;
      setFormOpen(false);
    },
    onCancel: () => setFormOpen(false),
  });
  const createBtn = h('button', {
    type: 'button', class: 'btn btn-small btn-secondary', testid: 'create-room', 'aria-expanded': 'false',
    'aria-controls': 'create-room-form', onclick: () => setFormOpen(form.el.hidden),
  }, '+ New room');

  const el = h('div', { class: 'sidebar-inner' },
    h('div', { class: 'sidebar-head' }, h('h2', { class: 'sidebar-title' }, 'Rooms'), createBtn),
    form.el,
    list,
    empty,
    archivedToggle);

  function setFormOpen(open) {
    form.el.hidden = !open;
    createBtn.setAttribute('aria-expanded', String(open));
    if (open) form.focus();
  }

  // Keyed rendering: each room keeps its element, so focus and hover survive updates.
  const items = new Map(); // room id → {li, link, name, icon, badge, live, time, preview}

  function itemFor(room) {
    let item = items.get(room.id);
    if (!item) {
      const name = h('span', { class: 'room-name' });
      const kindIcon = h('span', { class: 'room-icon', 'aria-hidden': 'true' });
      const badge = h('span', { class: 'badge', testid: 'unread-count' });
      const live = h('span', { class: 'room-live', testid: 'room-live', title: 'Live call in progress' }, 'Live');
      const time = h('time', { class: 'room-time', testid: 'room-time' });
      const sender = h('span', { class: 'room-preview-sender' });
      const text = h('span', { class: 'room-preview-text' });
      const preview = h('span', { class: 'room-preview', testid: 'room-preview' }, sender, text);
      const link = h('a', {
        class: 'room-item', href: `#/rooms/${encodeURIComponent(room.id)}`, testid: 'room-item',
        dataset: { roomId: room.id }, onclick: () => onNavigate(),
      }, kindIcon, h('span', { class: 'room-body' }, h('span', { class: 'room-line' }, name, time), preview));
      item = { li: h('li', {}, link), link, name, kindIcon, badge, live, time, sender, text, preview, kind: null };
      items.set(room.id, item);
    }
    const title = app.roomTitle(room.id);
    const unread = room.id === app.activeRoomId ? 0 : app.reads.unread(room.id);
    const active = room.id === app.activeRoomId;
    item.link.className = `room-item${active ? ' active' : ''}${unread ? ' has-unread' : ''}${room.archived_at ? ' archived' : ''}`;
    item.link.dataset.kind = room.kind;
    item.link.dataset.archived = room.archived_at ? 'true' : 'false';
    if (active) item.link.setAttribute('aria-current', 'page');
    else item.link.removeAttribute('aria-current');
    item.link.title = `${KIND_LABEL[room.kind] || room.kind}: ${title}`;
    item.name.textContent = room.archived_at ? `${title} (archived)` : title;
    const other = room.kind === 'direct' ? app.otherMember(room.id) : null;
    // A direct room shows the other person's picture (or initials); other rooms their kind.
    // A group or course room shows its picture when its instructors set one.
    const picture = !other && room.avatar?.small ? room.avatar.small : null;
    const look = other ? `person:${other.id}:${other.avatar?.small || ''}:${other.display_name}` : picture ? `picture:${picture}` : room.kind;
    if (item.kind !== look) {
      item.kind = look;
      item.kindIcon.classList.toggle('room-avatar', !!other || !!picture);
      item.kindIcon.replaceChildren(other ? avatarFor(other, { cls: 'avatar-sm' })
        : picture ? h('span', { class: 'avatar avatar-sm' }, h('img', { class: 'avatar-img', src: picture, alt: '', testid: 'room-picture' }))
          : icon(room.kind === 'direct' || room.kind === 'group' ? room.kind : 'course'));
    }
    showLastMessage(item, room, room.last_message);
    if (app.calls.liveSession(room.id)) {
      if (!item.live.isConnected) item.link.insertBefore(item.live, item.badge.isConnected ? item.badge : null);
    } else {
      item.live.remove();
    }
    if (unread) {
      item.badge.textContent = unread > 99 ? '99+' : String(unread);
      item.badge.setAttribute('aria-label', `${unread} unread`);
      if (!item.badge.isConnected) item.link.append(item.badge);
    } else {
      item.badge.remove();
    }
    return item;
  }

  function showLastMessage(item, room, last) {
    item.preview.hidden = !last;
    item.time.hidden = !last;
    if (!last) return;
    const mine = last.sender?.id && last.sender.id === app.me.id;
    // The sender's current name (after a rename) when their room's members are known.
    const name = last.sender?.id && (app.store.room(room.id).displayName(last.sender.id) || last.sender.display_name);
    item.sender.textContent = mine ? 'You: ' : name ? `${name}: ` : '';
    item.text.textContent = last.preview;
    item.time.dateTime = last.created_at;
    item.time.textContent = previewTime(last.created_at);
    item.time.title = new Date(last.created_at).toLocaleString();
  }

  function render() {
    const wanted = [];
    let archived = 0;
    for (const room of app.rooms.values()) {
      if (room.archived_at) archived += 1;
      if (!room.archived_at || showArchived) wanted.push(itemFor(room).li);
    }
    const shown = new Set(wanted);
    for (const [id, item] of items) {
      if (!app.rooms.has(id)) { item.li.remove(); items.delete(id); } else if (!shown.has(item.li)) item.li.remove();
    }
    archivedToggle.hidden = !archived;
    archivedToggle.textContent = showArchived ? 'Hide archived rooms' : `Show archived (${archived})`;
    archivedToggle.setAttribute('aria-pressed', String(showArchived));
    // Move only what is out of place (moving a focused node would drop its focus).
    wanted.forEach((li, i) => {
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    if (!app.roomsLoaded) {
      empty.textContent = app.roomsError ? `Cannot load rooms: ${app.roomsError}` : 'Loading rooms…';
      empty.hidden = false;
    } else if (!app.rooms.size) {
      empty.textContent = 'No rooms yet. Create one with “+ New room”, or ask your instructor to add you to a course.';
      empty.hidden = false;
    } else {
      empty.hidden = true;
    }
    // Hidden archived rooms do not count (their last line is often the "archived" note).
    let total = 0;
    for (const room of app.rooms.values()) if (!room.archived_at || showArchived) total += app.reads.unread(room.id);
    document.title = total ? `(${total}) Podium` : 'Podium';
  }

  app.on('rooms', render);
  app.on('active', render);
  app.calls.on('live', render); // a call started or ended in one of the rooms
  // A direct room is titled with the other person's name and picture, known once its members
  // are; previews name their sender as the members now have it.
  app.store.on('meta', (ev) => { if (ev.part === 'members' && app.rooms.has(ev.room)) render(); });
  render();
  return { el };
}

function createRoomForm(app, { onCreated, onCancel }) {
  const name = h('input', { id: 'new-room-name', testid: 'room-name-input', maxlength: '120', autocomplete: 'off', placeholder: 'e.g. Biology 101' });
  const kind = h('select', { id: 'new-room-kind', testid: 'room-kind-select' },
    h('option', { value: 'course' }, 'Course'),
    h('option', { value: 'group' }, 'Group'),
    h('option', { value: 'direct' }, 'Direct message'));
  const people = h('input', { id: 'new-room-people', testid: 'room-people-input', autocomplete: 'off', autocapitalize: 'none', placeholder: 'usernames, comma separated' });
  const peopleLabel = h('label', { for: 'new-room-people' }, 'Add people (optional)');
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-small', testid: 'create-room-submit' }, 'Create');

  kind.addEventListener('change', () => {
    const direct = kind.value === 'direct';
    peopleLabel.textContent = direct ? 'Username of the other person' : 'Add people (optional)';
    people.placeholder = direct ? 'username' : 'usernames, comma separated';
    name.placeholder = direct ? 'optional' : 'e.g. Biology 101';
  });

  const el = h('form', { id: 'create-room-form', class: 'create-room', hidden: true, 'aria-label': 'Create a room', onsubmit: onSubmit },
    h('div', { class: 'field' }, h('label', { for: 'new-room-name' }, 'Room name'), name),
    h('div', { class: 'field' }, h('label', { for: 'new-room-kind' }, 'Kind'), kind),
    h('div', { class: 'field' }, peopleLabel, people),
    h('p', { class: 'form-note', testid: 'create-room-note' }, 'You become the room’s instructor: you add its members and run its calls.'),
    error,
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => { reset(); onCancel(); } }, 'Cancel'),
      submit));

  function reset() {
    name.value = '';
    people.value = '';
    kind.value = 'course';
    kind.dispatchEvent(new Event('change'));
    error.hidden = true;
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    const usernames = people.value.split(/[\s,;]+/).map((s) => s.trim().replace(/^@/, '')).filter(Boolean);
    const roomName = name.value.trim();
    if (kind.value === 'direct' && usernames.length !== 1) return fail('A direct message needs exactly one other username.');
    if (kind.value !== 'direct' && !roomName) return fail('Give the room a name.');
    submit.disabled = true;
    error.hidden = true;
    try {
      const room = await app.createRoom({ kind: kind.value, name: roomName || usernames[0], usernames });
      reset();
      onCreated(room);
    } catch (err) {
      fail(err.message || 'Could not create the room.');
    } finally {
      submit.disabled = false;
    }
  }

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
  }

  return { el, focus: () => name.focus() };
}
