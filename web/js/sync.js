// Room subscriptions and recovery: room.join on every hello, then room.sync until complete; scroll-back pages.
//
// Room subscriptions and recovery. Every room in `wanted` is joined on each connection
// ('hello'); rooms whose history window is open are then caught up with room.sync from the
// last contiguous seq, paging until complete:true — so after a reconnect every stored message
// has been seen exactly once, in seq order (PROTOCOL §2.1 recovery rule).

import * as api from './api.js';

const SYNC_PAGE = 200;
const INITIAL_WINDOW = 50;
const HISTORY_PAGE = 500; // the server's largest history page (MAX_SYNC)

export class RoomSync {
  constructor({ socket, store, getMe, onJoined = () => {}, onMessages = () => {} }) {
    this.socket = socket;
    this.store = store;
    this.getMe = getMe;
    this.onJoined = onJoined; // (roomId, ack)
    this.onMessages = onMessages; // (roomId, messages) — every message that came from a sync
    this.wanted = new Set();
    this.generation = 0; // bumps on every connection; stale loops stop when it changes
    this.catchingUp = new Map(); // roomId → {again, promise}
    this.opened = new Set(); // rooms whose history window is kept
    socket.on('hello', () => this.resubscribeAll());
  }

  want(roomIds) {
    for (const id of roomIds) {
      if (this.wanted.has(id)) continue;
      this.wanted.add(id);
      if (this.socket.online) this.join(id, this.generation).catch((err) => this.report(id, err));
    }
  }

  resubscribeAll() {
    const gen = ++this.generation;
    for (const r of this.store.rooms.values()) r.joined = false;
    for (const id of this.wanted) this.join(id, gen).catch((err) => this.report(id, err));
  }

  async join(roomId, gen) {
    const ack = await this.socket.request('room.join', { room: roomId });
    if (gen !== this.generation) return;
    const r = this.store.room(roomId);
    const knownChange = r.loaded ? r.lastChange : null;
    this.store.applyJoin(roomId, ack, this.getMe());
    this.onJoined(roomId, ack);
    if (r.loaded || this.opened.has(roomId)) await this.ensureWindow(roomId);
    if (gen !== this.generation) return;
    // Edits, deletes and reactions made while we were away, on messages we already hold.
    if (knownChange !== null && knownChange !== undefined && knownChange < (ack.last_change || 0)) {
      await this.catchUpChanges(roomId, knownChange, gen);
    } else if (gen === this.generation) {
      r.lastChange = ack.last_change || 0;
    }
  }

  async catchUpChanges(roomId, since, gen) {
    const r = this.store.room(roomId);
    for (;;) {
      const data = await this.socket.request('room.changes', { room: roomId, since, limit: SYNC_PAGE });
      if (gen !== this.generation) return;
      const messages = data.messages || [];
      // Only messages we hold (older ones load fresh on scroll-back); a changed copy
      // supersedes ours even when only its reactions differ.
      const held = messages.filter((m) => r.messages.has(m.seq));
      for (const m of held) r.messages.delete(m.seq);
      this.store.upsertMessages(roomId, held, { fromSync: true });
      since = data.last_change;
      if (data.complete || !messages.length) {
        r.lastChange = since;
        return;
      }
    }
  }

  /**
   * A view shows this room: open its history window (the last INITIAL_WINDOW messages, then
   * everything after them) and keep it caught up on every reconnect. Offline, the window
   * opens on the next hello.
   */
  async open(roomId) {
    this.opened.add(roomId);
    this.wanted.add(roomId);
    if (!this.socket.online) return;
    try {
      if (this.store.room(roomId).joined) await this.ensureWindow(roomId);
      else await this.join(roomId, this.generation);
    } catch (err) {
      if (err?.code === 'forbidden' || err?.code === 'not_found') this.forget(roomId);
      throw err;
    }
  }

  /** Stop joining a room (removed from it, or it does not exist). */
  forget(roomId) {
    this.wanted.delete(roomId);
    this.opened.delete(roomId);
  }

  async ensureWindow(roomId) {
    const r = this.store.room(roomId);
    if (!r.loaded) this.store.openWindow(roomId, Math.max(0, r.lastSeq - INITIAL_WINDOW));
    await this.catchUp(roomId);
  }

  /** Page room.sync from the room's last contiguous seq until complete. Re-entrant-safe. */
  async catchUp(roomId) {
    const running = this.catchingUp.get(roomId);
    if (running) {
      running.again = true;
      return running.promise;
    }
    const state = { again: false, promise: null };
    this.catchingUp.set(roomId, state);
    state.promise = (async () => {
      try {
        do {
          state.again = false;
          await this.pageUntilComplete(roomId);
        } while (state.again);
      } finally {
        this.catchingUp.delete(roomId);
      }
    })();
    return state.promise;
  }

  async pageUntilComplete(roomId) {
    const gen = this.generation;
    const r = this.store.room(roomId);
    let since = r.syncedSeq;
    for (;;) {
      const data = await this.socket.request('room.sync', { room: roomId, since, limit: SYNC_PAGE });
      if (gen !== this.generation) return;
      const messages = (data.messages || []).slice().sort((a, b) => a.seq - b.seq);
      this.store.upsertMessages(roomId, messages, { fromSync: true });
      if (messages.length) this.onMessages(roomId, messages);
      if (messages.length) since = messages[messages.length - 1].seq;
      if (data.complete || !messages.length) {
        this.store.markSynced(roomId, Math.max(since, data.last_seq || 0));
        return;
      }
    }
  }

  /** Scroll-back: the page of messages before the oldest loaded one (REST). */
  async loadOlder(roomId, limit = 50) {
    const r = this.store.room(roomId);
    if (!r.loaded || !r.hasOlder || !r.oldestSeq) return 0;
    const data = await api.messagesBefore(roomId, r.oldestSeq, limit);
    const messages = data.messages || [];
    const oldest = messages.reduce((min, m) => Math.min(min, m.seq), Infinity);
    // `complete` on a `before` page means nothing older remains; seqs are gapless from 1.
    const exhausted = data.complete === true || messages.length === 0 || oldest <= 1;
    this.store.prependOlder(roomId, messages, exhausted);
    return messages.length;
  }

  /**
   * Make the window reach back to `seq` and `context` messages before it (a search result or
   * a quoted message far back): pages of up to HISTORY_PAGE older messages, added to the store
   * at once when all have come (one render, not one per page). The window stays contiguous, so
   * everything after `seq` is loaded too. Returns true when `seq` is in the window.
   */
  async loadBackTo(roomId, seq, context = 10) {
    const r = this.store.room(roomId);
    const target = Math.max(1, seq - context);
    if (r.loaded && r.hasOlder && r.oldestSeq && r.oldestSeq > target) {
      const fetched = [];
      let before = r.oldestSeq;
      let exhausted = false;
      while (before > target) {
        const data = await api.messagesBefore(roomId, before, Math.min(HISTORY_PAGE, before - target));
        const messages = data.messages || [];
        fetched.push(...messages);
        const oldest = messages.reduce((min, m) => Math.min(min, m.seq), Infinity);
        // As in loadOlder: `complete` on a `before` page means nothing older remains.
        if (data.complete === true || !messages.length || oldest <= 1) {
          exhausted = true;
          break;
        }
        before = oldest;
      }
      // A scroll-back page may have come meanwhile: the union is still one contiguous range.
      this.store.prependOlder(roomId, fetched, exhausted);
    }
    return r.loaded && r.oldestSeq !== null && r.oldestSeq <= seq;
  }

  /** A live message arrived with a seq beyond the contiguous window: fetch what is missing. */
  fillGap(roomId) {
    if (!this.socket.online) return;
    this.catchUp(roomId).catch((err) => this.report(roomId, err));
  }

  report(roomId, err) {
    if (err?.code === 'offline' || err?.code === 'disconnected') return; // the next hello retries
    console.warn(`room ${roomId}: sync failed: ${err?.code || ''} ${err?.message || err}`);
  }
}
