// The signed-in layout: top bar, offline banner, rooms, chat and people regions (drawers on narrow screens).
//
// The signed-in layout: top bar, offline banner, and three regions — rooms (left),
// chat (centre), people (right). On narrow screens the side regions become drawers.

import { h, avatarFor } from '../dom.js';
import { icon } from '../icons.js';
import { createRoomList } from './room-list.js';
import { createChatView } from './chat.js';
import { createMembersPanel } from './members.js';
import { createWelcome } from './welcome.js';
import { createCallArea } from './call.js';
import { createCallPanel } from './call-participants.js';
import { openProfile } from './profile.js';
import { createStatusPicker } from './status-picker.js';
import { createIncomingCall } from './incoming-call.js';

const STATE_LABEL = { online: 'Connected', connecting: 'Connecting…', offline: 'Offline', idle: 'Connecting…', stopped: 'Signed out' };

export function createShell(app) {
  const statusDot = h('span', { class: 'conn-dot', 'aria-hidden': 'true' });
  const statusText = h('span', { class: 'conn-text' }, 'Connecting…');
  const status = h('span', { class: 'conn-status', 'data-state': 'connecting', role: 'status', title: 'Connection' }, statusDot, statusText);

  const roomsToggle = h('button', {
    type: 'button', class: 'icon-btn only-narrow', 'aria-label': 'Show rooms', 'aria-controls': 'sidebar',
    onclick: () => toggleDrawer('sidebar'),
  }, icon('menu', { size: 20 }));

  const logout = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'logout', onclick: () => app.logout() }, 'Log out');
  const meName = h('span', { class: 'me-name', testid: 'me-name' });
  const user = h('button', {
    type: 'button', class: 'me', testid: 'open-profile', title: 'Your profile: picture, name, password',
    onclick: () => openProfile(app),
  });
  function showMe() {
    meName.textContent = app.me.display_name || app.me.username;
    user.replaceChildren(avatarFor(app.me, { cls: 'avatar-sm' }), meName);
  }
  showMe();
  const statusPicker = createStatusPicker(app); // online / away / busy, away when idle

  const header = h('header', { class: 'topbar' },
    roomsToggle,
    h('a', { class: 'brand', href: '#/' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'P'), h('span', { class: 'brand-name' }, 'Podium')),
    status,
    h('div', { class: 'topbar-spacer' }),
    statusPicker.el,
    user,
    logout);

  // The banner element's own text is exactly the message; extras sit next to it.
  const banner = h('div', { id: 'offline-banner', testid: 'offline-banner', class: 'offline-text', role: 'status', 'aria-live': 'polite', hidden: true }, 'Offline — reconnecting…');
  const pendingNote = h('span', { class: 'offline-pending' });
  const retry = h('button', { type: 'button', class: 'link-btn', onclick: () => app.socket.reconnectNow() }, 'Retry now');
  const bannerBar = h('div', { class: 'offline-bar', hidden: true }, icon('warning', { size: 17 }), banner, pendingNote, retry);

  const sidebar = h('nav', { id: 'sidebar', class: 'sidebar', 'aria-label': 'Rooms' });
  // The call area (join banner, call stage) sits above the chat and outlives room switches;
  // the call's participant list sits above the room's people.
  const callArea = createCallArea(app);
  const callPanel = createCallPanel(app);
  const chatSlot = h('div', { class: 'chat-slot' });
  const peopleSlot = h('div', { class: 'people-slot' });
  const main = h('main', { class: 'chat-region', id: 'chat-region' }, callArea.el, chatSlot);
  const panel = h('aside', { id: 'people-panel', class: 'people-panel', 'aria-label': 'People in this room' }, callPanel.el, peopleSlot);
  const scrim = h('div', { class: 'scrim', onclick: () => closeDrawers() });
  const layout = h('div', { class: 'layout' }, sidebar, main, panel, scrim);
  const incoming = createIncomingCall(app); // a call placed to us rings wherever we are
  const el = h('div', { class: 'shell' }, header, bannerBar, layout, incoming.el);

  sidebar.append(createRoomList(app, { onNavigate: () => closeDrawers() }).el);

  let chat = null;
  let people = null;
  function mountActive() {
    chat?.destroy();
    people?.destroy();
    chat = null;
    people = null;
    const roomId = app.activeRoomId;
    if (roomId) {
      chat = createChatView(app, roomId);
      people = createMembersPanel(app, roomId);
      chatSlot.replaceChildren(chat.el);
      peopleSlot.replaceChildren(people.el);
      chat.focus();
    } else {
      chatSlot.replaceChildren(createWelcome(app).el);
      peopleSlot.replaceChildren();
    }
    el.classList.toggle('has-room', !!roomId);
    closeDrawers();
  }

  let everOnline = false;
  let failedOnce = false;
  function showConnection(state) {
    if (state === 'online') everOnline = true;
    if (state === 'offline') failedOnce = true;
    status.dataset.state = state === 'idle' ? 'connecting' : state;
    statusText.textContent = STATE_LABEL[state] || state;
    // Hide the banner during the very first connect; show it whenever we are not connected after.
    const down = state !== 'online' && state !== 'stopped' && (everOnline || failedOnce);
    banner.hidden = !down;
    bannerBar.hidden = !down;
    showPending();
  }

  function showPending() {
    const n = app.outbox.size;
    pendingNote.textContent = n ? `${n} message${n === 1 ? '' : 's'} will be sent when you are back online.` : '';
  }

  function toggleDrawer(which) {
    const cls = which === 'sidebar' ? 'show-sidebar' : 'show-panel';
    const open = !el.classList.contains(cls);
    closeDrawers();
    el.classList.toggle(cls, open);
  }

  function closeDrawers() {
    el.classList.remove('show-sidebar', 'show-panel');
  }

  const onKey = (ev) => {
    if (ev.key === 'Escape' && (el.classList.contains('show-sidebar') || el.classList.contains('show-panel'))) closeDrawers();
  };
  document.addEventListener('keydown', onKey);

  const offs = [
    () => document.removeEventListener('keydown', onKey),
    app.on('active', mountActive),
    app.on('me', showMe),
    app.on('connection', showConnection),
    app.on('outbox', showPending),
    app.on('people-toggle', () => toggleDrawer('panel')),
    app.on('rooms-toggle', () => toggleDrawer('sidebar')),
    app.on('call-layout', (inCall) => el.classList.toggle('in-call', inCall)),
  ];
  mountActive();
  showConnection(app.socket.state);

  return {
    el,
    destroy() {
      offs.forEach((off) => off());
      statusPicker.destroy();
      chat?.destroy();
      people?.destroy();
      callArea.destroy();
      incoming.destroy();
      callPanel.destroy();
    },
  };
}
