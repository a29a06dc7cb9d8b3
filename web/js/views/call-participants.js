// Who is in the call (top of the people panel): hands, mic/camera/screen indicators, and the instructors' Mute, Mute all,
// Allow to unmute and Remove. In an SFU call Mute is enforced at the media router and held until "Allow to unmute".

import { h, initials, hueFor } from '../dom.js';
import { icon } from '../icons.js';
import { participantActionFailed } from '../call/notices.js';

/** The participant list: {el, destroy()}; hidden while not in a call. */
export function createCallPanel(app) {
  const calls = app.calls;
  const heading = h('h2', { class: 'panel-title' });
  const hands = h('p', { class: 'call-hands', hidden: true });
  const list = h('ul', { class: 'people-list call-people-list' });
  const muteAll = h('button', { type: 'button', class: 'act', testid: 'mute-all', hidden: true, onclick: () => act(null, 'mute all') },
    icon('mic-off', { size: 14 }), 'Mute all');
  const el = h('section', { class: 'call-people', testid: 'participant-list', 'aria-label': 'In the call', hidden: true },
    heading, muteAll, hands, list);
  const confirming = new Set(); // peer ids whose Remove asks for confirmation
  const rowActions = {
    act: (p, what) => act(p, what),
    confirm: (p) => { confirming.add(p.peer_id); render(); },
    cancel: (p) => { confirming.delete(p.peer_id); render(); },
  };

  function everyone() {
    const out = [];
    if (calls.self) out.push({ ...calls.self, media: calls.mediaState(), hand: calls.hand, me: true });
    for (const p of calls.participants.values()) out.push(p);
    const rank = (p) => (p.hand ? 0 : 2) + (p.me ? 0 : 1) + (p.recorder ? 4 : 0);
    return out.sort((a, b) => rank(a) - rank(b) || (a.user?.display_name || '').localeCompare(b.user?.display_name || ''));
  }

  async function act(p, what) {
    if (p) confirming.delete(p.peer_id);
    try {
      if (what === 'mute all') await calls.muteAll();
      else if (what === 'mute') await calls.muteParticipant(p.peer_id);
      else if (what === 'allow') await calls.muteParticipant(p.peer_id, { allowUnmute: true });
      else await calls.removeParticipant(p.peer_id);
    } catch (err) {
      const name = p ? p.user?.display_name : 'everyone';
      calls.notice({ text: participantActionFailed(what === 'mute all' ? 'mute' : what, name, err), kind: 'error' });
    }
    render();
  }

  function render() {
    el.hidden = !calls.inCall;
    if (!calls.inCall) {
      list.replaceChildren();
      confirming.clear();
      return;
    }
    const people = everyone();
    for (const id of [...confirming]) if (!calls.participants.has(id)) confirming.delete(id);
    heading.textContent = `In the call — ${people.filter((p) => !p.recorder).length}`;
    const raised = people.filter((p) => p.hand).length;
    hands.hidden = !raised;
    hands.replaceChildren(icon('hand', { size: 15 }), ` ${raised} raised hand${raised === 1 ? '' : 's'}`);
    const instructor = calls.isInstructor;
    const enforced = calls.media === 'sfu';
    muteAll.hidden = !instructor || !people.some((p) => !p.me && !p.recorder && p.user?.role !== 'instructor');
    muteAll.title = enforced ? 'Mute every student; they can unmute once you allow it' : 'Ask every student to mute';
    list.replaceChildren(...people.map((p) => participantRow(p, {
      actions: instructor && !p.me ? instructorActions(p, confirming.has(p.peer_id), rowActions, enforced) : null,
    })));
  }

  const offs = [calls.on('participants', render), calls.on('state', render), calls.on('local', render), app.on('rooms', render)];
  render();
  return { el, destroy: () => offs.forEach((off) => off()) };
}

/** One participant: avatar, name, role, indicators, and the instructor's `actions` (or null). */
function participantRow(p, { actions }) {
  const user = p.user || {};
  const display = user.display_name || 'Guest';
  const sub = [p.me ? 'you' : null, user.role === 'instructor' ? 'Instructor' : null, p.recorder ? 'Recorder' : null,
    p.media?.screen ? 'Presenting' : null].filter(Boolean).join(' · ');
  const indicators = h('span', { class: 'call-person-icons' },
    p.hand ? h('span', { class: 'ind ind-hand', testid: 'hand-indicator', title: 'Hand raised' }, icon('hand', { size: 15, label: 'Hand raised' })) : null,
    p.muted_by_instructor ? h('span', { class: 'ind ind-off', testid: 'held-indicator', title: p.may_unmute === false ? 'Muted by the instructor' : 'Muted by the instructor, may unmute' }, icon('mic-off', { size: 15, label: 'Muted by the instructor' })) : null,
    !p.recorder && !p.media?.audio && !p.muted_by_instructor ? h('span', { class: 'ind ind-off', testid: 'mic-indicator', title: 'Microphone off' }, icon('mic-off', { size: 15, label: 'Microphone off' })) : null,
    !p.recorder && !p.media?.video ? h('span', { class: 'ind ind-off', testid: 'camera-indicator', title: 'Camera off' }, icon('video-off', { size: 15, label: 'Camera off' })) : null,
    p.media?.screen ? h('span', { class: 'ind ind-screen', testid: 'screen-indicator', title: 'Sharing the screen' }, icon('screen', { size: 15, label: 'Sharing the screen' })) : null);
  return h('li', { class: `person call-person${p.hand ? ' hand-up' : ''}`, testid: 'participant', dataset: { peerId: p.peer_id, userId: user.id || '' } },
    h('span', { class: 'avatar avatar-sm', style: `--hue:${hueFor(user.id || display)}`, 'aria-hidden': 'true' }, initials(display)),
    h('span', { class: 'person-text' }, h('span', { class: 'person-name' }, display), h('span', { class: 'person-sub' }, sub)),
    indicators,
    actions);
}

/** Mute (enforced: also when the mic is off, to hold it), Allow to unmute (a held participant)
 * and Remove (asks first); nothing for the recorder but Remove's confirmation. */
function instructorActions(p, confirmingRemove, { act, confirm, cancel }, enforced) {
  const display = p.user?.display_name || 'Guest';
  if (confirmingRemove) {
    return h('span', { class: 'call-person-actions confirming' },
      h('span', { class: 'confirm-text' }, 'Remove?'),
      h('button', { type: 'button', class: 'act act-danger', testid: 'confirm-remove', onclick: () => act(p, 'remove') }, 'Remove'),
      h('button', { type: 'button', class: 'act', onclick: () => cancel(p) }, 'Cancel'));
  }
  if (p.recorder) return null;
  const held = p.muted_by_instructor && p.may_unmute === false;
  const canMute = enforced ? !held : !!p.media?.audio;
  return h('span', { class: 'call-person-actions' },
    held ? h('button', {
      type: 'button', class: 'act', testid: 'allow-unmute', title: `Let ${display} unmute`, onclick: () => act(p, 'allow'),
    }, icon('mic', { size: 14 }), 'Allow to unmute') : h('button', {
      type: 'button', class: 'act', testid: 'mute-participant', disabled: !canMute,
      title: canMute ? `Mute ${display}${enforced ? ' (they cannot unmute until you allow it)' : ''}` : `${display} is muted`,
      onclick: () => act(p, 'mute'),
    }, icon('mic-off', { size: 14 }), 'Mute'),
    h('button', {
      type: 'button', class: 'act act-danger', testid: 'remove-participant', title: `Remove ${display} from the call`,
      onclick: () => confirm(p),
    }, icon('user-x', { size: 14 }), 'Remove'));
}
