// Shown in the chat region when no room is selected.

import { h } from '../dom.js';

export function createWelcome(app) {
  const name = app.me.display_name || app.me.username || ''; // the whole name: "Ms. Lee", not "Ms."
  const el = h('section', { class: 'welcome' },
    h('div', { class: 'welcome-card' },
      h('h2', {}, `Welcome${name ? `, ${name}` : ''}`),
      h('p', { class: 'muted' }, 'Pick a room on the left to start chatting, or create a new one for a course, a study group or a direct conversation.'),
      h('ul', { class: 'welcome-tips' },
        h('li', {}, 'Press Enter to send, Shift+Enter for a new line.'),
        h('li', {}, 'Hover a message to react, reply, edit or delete it.'),
        h('li', {}, 'Instructors can post announcements and add people by username.'),
        h('li', {}, 'Anyone can create a room: you become its instructor, add its members and run its calls.'))));
  return { el };
}
