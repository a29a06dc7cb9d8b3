// WebSocket transport: hello, request/ack by id with timeouts, reconnect with backoff.
//
// WebSocket transport: authenticate with ?token=, wait for hello, request/ack with ids and
// timeouts, automatic reconnect with exponential backoff and jitter.
//
// Events (via on()): 'state' (state string), 'hello' (frame), 'unauthorized', and every
// server event by its type ('message.new', 'typing', …). Room re-joining and resync after a
// reconnect are done by sync.js on 'hello'; resending unacked messages by outbox.js.

import { Emitter } from './emitter.js';

export class SocketError extends Error {
  constructor(code, reason, retryAfterS = null) {
    super(reason);
    this.name = 'SocketError';
    this.code = code;
    this.retryAfterS = retryAfterS; // rate_limited: when the same request would pass
  }
}

// Errors after which the same request may succeed later, on this or the next connection.
const TRANSIENT = new Set(['offline', 'timeout', 'disconnected', 'unavailable', 'rate_limited', 'internal']);
export const isTransient = (err) => TRANSIENT.has(err?.code);

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;

export class ChatSocket extends Emitter {
  /**
   * @param {object} opts
   * @param {() => string} opts.getToken
   * @param {number} [opts.requestTimeoutMs]
   * @param {() => Promise<unknown>|null} [opts.probe] a cheap request used to check an idle
   *   connection is still alive (browsers answer WS pings without telling JS).
   */
  constructor({ getToken, requestTimeoutMs = 10000, probe = null }) {
    super();
    this.getToken = getToken;
    this.requestTimeoutMs = requestTimeoutMs;
    this.probe = probe;
    this.state = 'idle'; // idle → connecting → online → offline → connecting … ; stopped
    this.hello = null;
    this.ws = null;
    this.pending = new Map();
    this.nextId = 0;
    this.attempt = 0;
    this.retryTimer = null;
    this.livenessTimer = null;
    this.lastFrameAt = 0;
    this.onBrowserOnline = () => this.reconnectNow();
    this.onBrowserOffline = () => this.drop('browser went offline');
  }

  start() {
    if (this.state !== 'idle' && this.state !== 'stopped') return;
    window.addEventListener('online', this.onBrowserOnline);
    window.addEventListener('offline', this.onBrowserOffline);
    this.connect();
  }

  /** Close for good (log out). Pending requests fail with 'disconnected'. */
  stop() {
    window.removeEventListener('online', this.onBrowserOnline);
    window.removeEventListener('offline', this.onBrowserOffline);
    clearTimeout(this.retryTimer);
    clearInterval(this.livenessTimer);
    this.setState('stopped');
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'logout');
    this.failPending('disconnected', 'Connection closed');
  }

  get online() {
    return this.state === 'online';
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (this.state === 'stopped') return;
    this.setState('connecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.usedToken = this.getToken() || '';
    const url = `${proto}//${location.host}/ws?token=${encodeURIComponent(this.usedToken)}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      console.warn('websocket: cannot open', err);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.lastFrameAt = Date.now();
      this.handleFrame(ev.data);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return; // a socket we already gave up on
      this.ws = null;
      this.afterClose(ev.code, ev.reason);
    };
    ws.onerror = () => {
      // The close event follows and carries the details; nothing to do here.
    };
  }

  handleFrame(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      console.warn('websocket: ignoring a frame that is not JSON');
      return;
    }
    if (!frame || typeof frame.type !== 'string') return;
    if ((frame.type === 'ack' || frame.type === 'error') && frame.id != null && this.pending.has(frame.id)) {
      const entry = this.pending.get(frame.id);
      this.pending.delete(frame.id);
      clearTimeout(entry.timer);
      if (frame.type === 'ack') entry.resolve(frame.data || {});
      else entry.reject(new SocketError(frame.code || 'internal', frame.reason || frame.code || 'error', frame.retry_after_s ?? null));
      return;
    }
    if (frame.type === 'error') {
      console.warn('websocket: server error', frame.code, frame.reason);
      return;
    }
    if (frame.type === 'hello') {
      this.hello = frame;
      this.attempt = 0;
      this.setState('online');
      this.startLiveness((frame.heartbeat_s || 25) * 1000);
      this.emit('hello', frame);
      return;
    }
    this.emit(frame.type, frame);
  }

  afterClose(code, reason) {
    clearInterval(this.livenessTimer);
    this.failPending('disconnected', 'Connection lost');
    if (this.state === 'stopped') return;
    if (code === 4401) {
      // Bad or expired token: reconnecting with the same token cannot help.
      this.setState('stopped');
      this.emit('unauthorized', { code, reason });
      return;
    }
    console.info(`websocket: closed (${code}${reason ? ` ${reason}` : ''}); reconnecting`);
    this.scheduleReconnect();
  }

  /** Forget the current socket now (it may be half-dead) and go through the reconnect path. */
  drop(why) {
    if (!this.ws) return;
    console.info(`websocket: dropping connection (${why})`);
    const ws = this.ws;
    this.ws = null;
    try {
      ws.close(4000, why.slice(0, 100));
    } catch (err) {
      console.warn('websocket: close failed', err);
    }
    this.afterClose(4000, why);
  }

  /**
   * Connect again now with the current token: a new token replaced the one this socket was
   * opened with (the password changed), even after that socket was closed 4401.
   */
  restart() {
    const ws = this.ws;
    this.ws = null;
    clearInterval(this.livenessTimer);
    if (ws) ws.close(1000, 'new token');
    this.failPending('disconnected', 'Reconnecting');
    this.attempt = 0;
    this.setState('offline');
    this.connect();
  }

  /** Reconnect immediately, skipping the backoff (browser back online, "retry now" button). */
  reconnectNow() {
    if (this.state === 'stopped' || this.state === 'online' || this.state === 'connecting') return;
    this.attempt = 0;
    this.connect();
  }

  scheduleReconnect() {
    this.setState('offline');
    clearTimeout(this.retryTimer);
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    // "Equal jitter": half fixed, half random, so a server restart does not get every
    // client back in the same millisecond.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt = Math.min(this.attempt + 1, 10);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  startLiveness(heartbeatMs) {
    clearInterval(this.livenessTimer);
    this.lastFrameAt = Date.now();
    let probing = false;
    this.livenessTimer = setInterval(async () => {
      if (!this.online || probing || !this.probe) return;
      if (Date.now() - this.lastFrameAt < heartbeatMs * 1.5) return;
      probing = true;
      try {
        await this.probe();
      } catch (err) {
        if (err.code === 'timeout') this.drop('liveness probe timed out');
      } finally {
        probing = false;
      }
    }, 5000);
  }

  failPending(code, reason) {
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.reject(new SocketError(code, reason));
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  /** Send a request and resolve with the ack's `data`; reject with SocketError. */
  request(type, fields = {}, { timeoutMs = this.requestTimeoutMs } = {}) {
    if (!this.online || !this.ws) return Promise.reject(new SocketError('offline', 'Not connected'));
    const id = `c${++this.nextId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SocketError('timeout', `${type} got no answer`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...fields, type, id }));
    });
  }

  /** Fire-and-forget frame (typing). Returns false when not connected. */
  send(type, fields = {}) {
    if (!this.online || !this.ws) return false;
    this.ws.send(JSON.stringify({ ...fields, type }));
    return true;
  }
}
