// app.polls: each poll's view for this user (poll.get), live results (poll.results, newest version wins), votes and the instructor's controls.
//
// A poll is a message of kind `poll` (its `poll` field is the same for everyone); what this
// user may see besides — their own answer, counts while private (instructors), ballots — comes
// from `poll.get` and the `poll.vote` ack, kept here by message id. `poll.results` events carry
// a `version`: an older one never undoes a newer one (two web processes may push out of
// order). A changed poll message (closed, re-opened, shared) and every reconnect fetch the
// views again. Event: 'change' (message id).

import { Emitter } from './emitter.js';
import { ApiError, getToken } from './api.js';

export class PollService extends Emitter {
  constructor({ socket }) {
    super();
    this.socket = socket;
    this.views = new Map(); // message id → view
    this.loading = new Map(); // message id → promise
    this.wanted = new Set(); // message ids of the cards shown: (re)loaded on every hello
    socket.on('poll.results', (f) => this.onResults(f));
    socket.on('message.updated', (f) => { if (f.message?.kind === 'poll') this.load(f.message.id).catch(() => {}); });
    socket.on('message.deleted', (f) => { if (f.message?.kind === 'poll') this.forget(f.message.id); });
    socket.on('hello', () => { for (const id of this.wanted) this.load(id).catch(() => {}); });
  }

  view(messageId) {
    return this.views.get(messageId) || null;
  }

  /** The view, fetched once when first asked for (a card being shown). */
  ensure(messageId) {
    this.wanted.add(messageId);
    if (!this.views.has(messageId) && !this.loading.has(messageId) && this.socket.online) {
      this.load(messageId).catch((err) => console.warn(`poll ${messageId}: poll.get failed: ${err.code}`));
    }
    return this.view(messageId);
  }

  load(messageId) {
    if (this.loading.has(messageId)) return this.loading.get(messageId);
    const p = this.socket.request('poll.get', { message_id: messageId })
      .then(({ poll }) => this.setView(poll))
      .finally(() => this.loading.delete(messageId));
    this.loading.set(messageId, p);
    return p;
  }

  setView(view) {
    const id = view.message_id;
    const cur = this.views.get(id);
    if (cur && cur.version > view.version) {
      // Older than what a push already told us: keep the newer counts, take our own answer.
      Object.assign(cur, { my_choices: view.my_choices, my_correct: view.my_correct });
    } else {
      this.views.set(id, cur && view.ballots === undefined && cur.version === view.version
        ? { ...view, ballots: cur.ballots } : view);
    }
    this.emit('change', id);
    return this.views.get(id);
  }

  onResults(f) {
    const cur = this.views.get(f.message_id);
    if (!cur) {
      this.ensure(f.message_id);
      return;
    }
    if (f.version < cur.version) return;
    Object.assign(cur, { version: f.version, counts: f.counts, voters: f.voters, closed: f.closed });
    if ('ballots' in f) cur.ballots = f.ballots;
    this.emit('change', f.message_id);
  }

  forget(messageId) {
    this.views.delete(messageId);
    this.wanted.delete(messageId);
    this.emit('change', messageId);
  }

  // ---- actions ----------------------------------------------------------------------------

  create(roomId, spec) {
    return this.socket.request('poll.create', { room: roomId, ...spec });
  }

  async vote(messageId, choices) {
    const { poll } = await this.socket.request('poll.vote', { message_id: messageId, choices });
    return this.setView(poll);
  }

  async control(messageId, action, fields = {}) {
    await this.socket.request(`poll.${action}`, { message_id: messageId, ...fields });
    return this.load(messageId);
  }

  /** The results as a CSV Blob (instructors): per option, or `by: 'voter'` per voter. */
  async csv(messageId, by = 'option') {
    const headers = { Accept: 'text/csv' };
    if (getToken()) headers.Authorization = `Bearer ${getToken()}`;
    let res;
    try {
      res = await fetch(`/api/polls/${encodeURIComponent(messageId)}/results.csv?by=${by}`, { headers });
    } catch {
      throw new ApiError(0, 'unavailable', 'Cannot reach the server. Check your connection.');
    }
    if (!res.ok) {
      const err = await res.json().catch(() => ({})).then((b) => b.error || {});
      throw new ApiError(res.status, err.code || 'internal', err.reason || `HTTP ${res.status}`);
    }
    return res.blob();
  }
}
