// The top bar's status picker: online, away or busy as others see us, with automatic away after a while
// without activity (my-status.js).

import { h } from '../dom.js';
import { MyStatus } from '../my-status.js';

const LABEL = { online: 'Online', away: 'Away', busy: 'Busy' };

/** {el, status (the MyStatus), destroy()}. */
export function createStatusPicker(app) {
  const status = new MyStatus({ socket: app.socket, userId: app.me.id });
  const dot = h('span', { class: 'status-dot', 'aria-hidden': 'true' });
  const options = Object.entries(LABEL).map(([value, label]) => h('option', { value }, label));
  const select = h('select', {
    class: 'select-small status-select', testid: 'my-status', 'aria-label': 'Your status',
    onchange: () => status.choose(select.value),
  }, options);
  const el = h('div', { class: 'status-picker', testid: 'status-picker' }, dot, select);
  const minutes = Math.round(status.idleMs / 60000);
  const idleText = minutes >= 1 ? `${minutes} minute${minutes === 1 ? '' : 's'}` : `${Math.round(status.idleMs / 1000)} seconds`;

  function render() {
    const now = status.status;
    select.value = now;
    options[1].textContent = status.auto ? 'Away (inactive)' : LABEL.away;
    dot.dataset.status = now;
    el.dataset.status = now;
    el.dataset.auto = String(status.auto);
    el.title = status.auto
      ? `Away: no activity for ${idleText}. You are back online as soon as you use Podium.`
      : `Your status, as others see it. Online turns to Away after ${idleText} without activity.`;
  }

  const off = status.on('change', render);
  render();
  return {
    el,
    status,
    destroy() {
      off();
      status.destroy();
    },
  };
}
