// Who is in the call (top of the people panel): hands, mic/camera/screen indicators, and the instructors' Mute, Mute all,
// Allow to unmute, Lower hand, Lower all hands, Remove, and whether students may turn cameras on and share screens.
// In an SFU call Mute is enforced at the media router and held until "Allow to unmute".

import { h, avatarFor } from '../dom.js';
import { icon } from '../icons.js';
import { participantActionFailed } from '../call/notices.js';
import { createBreakoutsSection } from './call-breakouts.js';

/** The participant list: {el, destroy()}; hidden while not in a call. */
export function createCallPanel(app) {
  const calls = app.calls;
  const heading = h('h2', { class: 'panel-title' });
  const hands = h('p', { class: 'call-hands', hidden: true });
  const list = h('ul', { class: 'people-list call-people-list' });
  const muteAll = h('button', { type: 'button', class: 'act', testid: 'mute-all', hidden: true, onclick: () => act(null, 'mute all') },
    icon('mic-off', { size: 14 }), 'Mute all');
  const lowerAll = h('button', { type: 'button', class: 'act', testid: 'lower-all-hands', hidden: true, onclick: () => act(null, 'lower all') },
    icon('hand', { size: 14 }), 'Lower all hands');
  const camerasToggle = h('button', { type: 'button', class: 'act', testid: 'students-cameras', hidden: true, onclick: () => toggleRule('video') });
  const screensToggle = h('button', { type: 'button', class: 'act', testid: 'students-screens', hidden: true, onclick: () => toggleRule('screen') });
  const lobbyToggle = h('button', { type: 'button', class: 'act', testid: 'waiting-room', hidden: true, onclick: () => toggleLobby() });
  const ringMembers = h('button', { type: 'button', class: 'act', testid: 'ring-members', hidden: true, title: 'Ring the room’s members who are not in the call',
    onclick: async () => {
      try {
        const res = await calls.ringing.ringMembers();
        calls.notice({ text: res.ringing.length ? `Ringing ${res.ringing.length} member${res.ringing.length === 1 ? '' : 's'}…` : 'Everyone is in the call already.', kind: 'info' });
      } catch (err) {
        calls.notice({ text: participantActionFailed('ring', 'the members', err), kind: 'error' });
      }
    } }, icon('phone', { size: 14 }), 'Ring members');
  const rules = h('div', { class: 'call-rules' }, camerasToggle, screensToggle, lobbyToggle, ringMembers);
  const waitingHead = h('h3', { class: 'panel-subtitle' });
  const admitAll = h('button', { type: 'button', class: 'act', testid: 'admit-all', onclick: () => lobbyAct(null, 'admit all') }, 'Admit all');
  const waitingList = h('ul', { class: 'people-list', testid: 'waiting-list' });
  const waiting = h('div', { class: 'call-waiting', testid: 'waiting-room-queue', hidden: true },
    h('div', { class: 'call-hands-row' }, waitingHead, admitAll), waitingList);
  const breakouts = createBreakoutsSection(app);
  const el = h('section', { class: 'call-people', testid: 'participant-list', 'aria-label': 'In the call', hidden: true },
    heading, rules, breakouts.el, waiting, muteAll, h('div', { class: 'call-hands-row' }, hands, lowerAll), list);
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
      if (what === 'mute all') await calls.moderation.muteAll();
      else if (what === 'lower all') await calls.policy.lowerHands();
      else if (what === 'lower hand') await calls.policy.lowerHands(p.peer_id);
      else if (what === 'mute') await calls.moderation.mute(p.peer_id);
      else if (what === 'allow') await calls.moderation.mute(p.peer_id, { allowUnmute: true });
      else await calls.moderation.remove(p.peer_id);
    } catch (err) {
      const name = p ? p.user?.display_name : 'everyone';
      const verb = { 'mute all': 'mute', 'lower all': 'lower the hand of', 'lower hand': 'lower the hand of' }[what] || what;
      calls.notice({ text: participantActionFailed(verb, name, err), kind: 'error' });
    }
    render();
  }

  async function lobbyAct(user, what) {
    try {
      if (what === 'admit all') await calls.lobby.admitAll();
      else if (what === 'admit') await calls.lobby.admit(user.id);
      else await calls.lobby.deny(user.id);
    } catch (err) {
      calls.notice({ text: participantActionFailed(what === 'deny' ? 'turn away' : 'admit', user?.display_name || 'everyone', err), kind: 'error' });
    }
    render();
  }

  async function toggleLobby() {
    try {
      await calls.lobby.set(!calls.lobby.on);
    } catch (err) {
      calls.notice({ text: participantActionFailed('change the waiting room for', 'the call', err), kind: 'error' });
    }
    render();
  }

  function renderWaiting(instructor) {
    lobbyToggle.hidden = !instructor;
    lobbyToggle.dataset.state = calls.lobby.on ? 'on' : 'off';
    lobbyToggle.setAttribute('aria-pressed', String(calls.lobby.on));
    lobbyToggle.replaceChildren(icon('people', { size: 14 }), `Waiting room: ${calls.lobby.on ? 'on' : 'off'}`);
    lobbyToggle.title = calls.lobby.on ? 'Let everyone in without waiting (those waiting come in now)' : 'Students wait until you let them in';
    const queue = instructor ? calls.lobby.queue : [];
    waiting.hidden = !queue.length;
    waitingHead.textContent = `Waiting to join — ${queue.length}`;
    waitingList.replaceChildren(...queue.map((w) => h('li', { class: 'person', testid: 'waiting-person', dataset: { userId: w.user.id } },
      h('span', { class: 'person-text' }, h('span', { class: 'person-name' }, w.user.display_name)),
      h('span', { class: 'call-person-actions' },
        h('button', { type: 'button', class: 'act', testid: 'admit', onclick: () => lobbyAct(w.user, 'admit') }, 'Admit'),
        h('button', { type: 'button', class: 'act act-danger', testid: 'deny', onclick: () => lobbyAct(w.user, 'deny') }, 'Deny')))));
  }

  async function toggleRule(kind) {
    try {
      await calls.policy.set({ [kind]: !calls.policy.rules()[kind] });
    } catch (err) {
      calls.notice({ text: participantActionFailed('change the rules for', 'students', err), kind: 'error' });
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
    lowerAll.hidden = !instructor || raised < 1;
    renderWaiting(instructor);
    ringMembers.hidden = !instructor || app.rooms.get(String(calls.session?.room))?.kind === 'direct';
    const allowed = calls.policy.rules();
    for (const [btn, kind, what] of [[camerasToggle, 'video', 'cameras'], [screensToggle, 'screen', 'screen sharing']]) {
      btn.hidden = !instructor;
      btn.dataset.state = allowed[kind] ? 'on' : 'off';
      btn.setAttribute('aria-pressed', String(allowed[kind]));
      btn.replaceChildren(icon(kind === 'video' ? (allowed.video ? 'video' : 'video-off') : 'screen', { size: 14 }),
        `Students' ${what}: ${allowed[kind] ? 'allowed' : 'off'}`);
      btn.title = allowed[kind] ? `Turn ${what} off for every student` : `Let students use ${what} again`;
    }
    muteAll.hidden = !instructor || !people.some((p) => !p.me && !p.recorder && p.user?.role !== 'instructor');
    muteAll.title = enforced ? 'Mute every student; they can unmute once you allow it' : 'Ask every student to mute';
    const room = calls.session && app.store.room(String(calls.session.room));
    const avatarOf = (p) => (p.me ? app.me.avatar : room?.members.get(String(p.user?.id))?.user?.avatar) || null;
    list.replaceChildren(...people.map((p) => participantRow({ ...p, user: { ...p.user, avatar: avatarOf(p) } }, {
      actions: instructor && !p.me ? instructorActions(p, confirming.has(p.peer_id), rowActions, enforced) : null,
    })));
  }

  const offs = [calls.on('participants', render), calls.on('state', render), calls.on('local', render), calls.on('lobby', render),
    app.on('rooms', render)];
  render();
  return { el, destroy: () => { breakouts.destroy(); offs.forEach((off) => off()); } };
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
    avatarFor(user, { cls: 'avatar-sm', name: display }),
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
    p.hand ? h('button', {
      type: 'button', class: 'act', testid: 'lower-hand', title: `Lower ${display}'s hand`, onclick: () => act(p, 'lower hand'),
    }, icon('hand', { size: 14 }), 'Lower hand') : null,
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
