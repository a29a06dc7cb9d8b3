// Outgoing messages until the server acks them: sent in order, resent with the same client_msg_id, kept in localStorage.
//
// Outgoing messages not yet acknowledged, keyed by client_msg_id. Entries are sent in order,
// one at a time, and resent with the SAME client_msg_id after a reconnect until the server
// acks (the server dedupes on client_msg_id, so a resend never makes a second copy).
// Persisted in localStorage so a reload does not lose a message typed while offline.
//
// Events: 'change' (entries changed), 'sent' (the stored message from the ack).

import { Emitter } from './emitter.js';
import { isTransient } from './socket.js';
import { randomId } from './dom.js';

const RETRY_MS = 3000;

export class Outbox extends Emitter {
  constructor({ socket, storageKey }) {
    super();
    this.socket = socket;
    this.storageKey = storageKey;
    this.entries = new Map();
    this.flushing = false;
    this.again = false;
    this.retryTimer = null;
    this.load();
  }

  /** Queue a message; returns the entry (status 'pending'). `file` ({name, size, category})
   * is only for showing the attachment while the message is pending. */
  add(room, { kind = 'text', content, reply_to = null, file_id = null, file = null }) {
    const entry = {
      client_msg_id: randomId(),
      room,
      kind,
      content,
      reply_to,
      file_id,
      file,
      queued_at: new Date().toISOString(),
      status: 'pending',
      error: null,
    };
    this.entries.set(entry.client_msg_id, entry);
    this.changed();
    this.flush();
    return entry;
  }

  forRoom(room) {
    return [...this.entries.values()].filter((e) => e.room === room);
  }

  get size() {
    return this.entries.size;
  }

  /** A stored message arrived (ack, message.new or sync): the entry with its id is done. */
  settle(message) {
    if (message?.client_msg_id && this.entries.delete(message.client_msg_id)) this.changed();
  }

  retry(clientMsgId) {
    const e = this.entries.get(clientMsgId);
    if (!e) return;
    e.status = 'pending';
    e.error = null;
    this.changed();
    this.flush();
  }

  discard(clientMsgId) {
    if (this.entries.delete(clientMsgId)) this.changed();
  }

  clearAll() {
    this.entries.clear();
    clearTimeout(this.retryTimer);
    localStorage.removeItem(this.storageKey);
  }

  async flush() {
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = true;
    try {
      do {
        this.again = false;
        for (const entry of [...this.entries.values()]) {
          if (entry.status !== 'pending' || !this.entries.has(entry.client_msg_id)) continue;
          if (!this.socket.online) return; // the next 'hello' flushes again
          const ok = await this.sendOne(entry);
          if (!ok) return; // keep order: later messages wait for this one
        }
      } while (this.again);
    } finally {
      this.flushing = false;
    }
  }

  async sendOne(entry) {
    entry.status = 'sending';
    this.changed();
    try {
      const fields = { room: entry.room, client_msg_id: entry.client_msg_id, kind: entry.kind, content: entry.content };
      if (entry.reply_to) fields.reply_to = entry.reply_to;
      if (entry.file_id) fields.file_id = entry.file_id;
      const data = await this.socket.request('message.send', fields);
      this.entries.delete(entry.client_msg_id);
      this.changed();
      if (data.message) this.emit('sent', data.message);
      return true;
    } catch (err) {
      if (!this.entries.has(entry.client_msg_id)) return true; // settled by message.new meanwhile
      if (isTransient(err)) {
        entry.status = 'pending';
        this.changed();
        if (this.socket.online) {
          clearTimeout(this.retryTimer);
          // rate_limited (slow mode, budgets) says when it would pass
          const wait = err.retryAfterS ? Math.max(RETRY_MS, err.retryAfterS * 1000 + 100) : RETRY_MS;
          this.retryTimer = setTimeout(() => this.flush(), wait);
        }
        return false;
      }
      console.warn(`message ${entry.client_msg_id} refused: ${err.code} ${err.message}`);
      entry.status = 'failed';
      entry.error = err.message || err.code;
      this.changed();
      return true; // a refused message must not block the ones after it
    }
  }

  changed() {
    this.save();
    this.emit('change');
  }

  save() {
    try {
      localStorage.setItem(this.storageKey, JSON.stringify([...this.entries.values()]));
    } catch (err) {
      console.warn('outbox: cannot persist', err);
    }
  }

  load() {
    let saved = [];
    try {
      saved = JSON.parse(localStorage.getItem(this.storageKey) || '[]');
    } catch {
      saved = [];
    }
    for (const e of Array.isArray(saved) ? saved : []) {
      if (!e?.client_msg_id || !e.room) continue;
      if (e.status === 'sending') e.status = 'pending';
      this.entries.set(e.client_msg_id, e);
    }
  }
}
