// Client harness for the scale-out benchmarks (bench/scaleout/run.py drives it).
//
//   node bench/scaleout/harness.js '<json config>'
//
// Config: {scenario: "fanout"|"soak", urls: [ws://.../ws, ...] (one per web process), seed: path
// (tokens and room ids from bench/fanout/seed.py), ...scenario parameters}. Prints PHASE lines
// (run.py samples server CPU and RSS when it reads them) and one JSON result line on stdout.
// Every loop is bounded in count and time and the process exits by itself.
//
// fanout: N subscribers in one room, spread round-robin over the urls; P publishers (not
//   subscribed), also round-robin, each sending messages/P with window/P unacked. Subscribers
//   use `client`: "c" (bench/scaleout/subs.c, built by run.py: every subscriber socket in one
//   epoll loop, ~0.26 µs of CPU per delivery), "raw" (a minimal RFC 6455 client on net.Socket that
//   scans each frame for its type and send time without JSON.parse, ~1 µs) or "ws" (the `ws`
//   package, as bench/fanout does).
// soak: `conns` connections (the `ws` package, every frame JSON.parsed and checked), connection
//   i in idle room floor(i / room_size) on urls[i % urls.length]; each room gets `rate`
//   messages/s from a random member, each preceded by typing {active:true} and followed by
//   typing {active:false}; for `duration_s`, then a drain. Every ack's seq is recorded; every
//   connection checks it receives its room's seqs gapless, in order, exactly once.
'use strict';
const fs = require('fs');
const net = require('net');
const crypto = require('crypto');
const { spawn } = require('child_process');
const readline = require('readline');
const { now, startHarness, makeContent, withTimeout, percentiles } = require('../harness_common');
const WebSocket = require('ws');

const cfg = JSON.parse(process.argv[2]);
const seed = JSON.parse(fs.readFileSync(cfg.seed, 'utf8'));
const runTag = startHarness(cfg);

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }


let cpuMark = null;
function phase(name) {
  if (name === 'start') cpuMark = process.cpuUsage();
  process.stdout.write(`PHASE ${name}\n`);
}
function clientCpuS() {
  const d = process.cpuUsage(cpuMark);
  return Math.round((d.user + d.system) / 1e4) / 100;
}

// --- fast path for message.new payloads ---------------------------------------------------------
// Server frames are json.dumps(separators=(",", ":")) of {"type":"message.new","message":{...}}.
const NEW_PREFIX = Buffer.from('{"type":"message.new"');
const CONTENT_KEY = Buffer.from('"content":"');
// Send time from a message.new payload in buf[start, end): the number after "<tag>|" in
// "content". Returns -1 for warm-up messages (tag "w"), NaN when there is none.
function scanNew(buf, start, end) {
  const at = buf.indexOf(CONTENT_KEY, start);
  if (at < 0 || at >= end) return NaN;
  let i = at + CONTENT_KEY.length;
  if (buf[i] === 119 /* w */) return -1;
  i += 2;
  let v = 0; let frac = 0; let scale = 1;
  for (; i < end; i++) {
    const c = buf[i];
    if (c === 46 /* . */) { frac = 1; continue; }
    if (c < 48 || c > 57) break;
    if (frac) { scale *= 10; v += (c - 48) / scale; } else v = v * 10 + (c - 48);
  }
  return v;
}
function isNew(buf, start, end) {
  return end - start > NEW_PREFIX.length && buf.compare(NEW_PREFIX, 0, NEW_PREFIX.length, start, start + NEW_PREFIX.length) === 0;
}

// --- clients ------------------------------------------------------------------------------------
// Both clients: open() → hello; request(type, fields) → {ok, data|code}; onNew(sendTime) for
// every message.new (fast path, no JSON.parse); onFrame(msg) for every other frame (parsed).
class BaseClient {
  constructor(url, token) {
    this.url = `${url}?token=${encodeURIComponent(token)}`;
    this.nextId = 1; this.pending = new Map();
    this.onNew = null; this.onFrame = null; this.onClose = null;
    this.hello = false; this.closed = false; this.closeCode = null;
    this._resolveHello = null;
  }
  _payload(buf, start, end) {
    if (this.onNew && isNew(buf, start, end)) { this.onNew(scanNew(buf, start, end), buf, start, end); return; }
    const msg = JSON.parse(buf.toString('utf8', start, end));
    const t = msg.type;
    if ((t === 'ack' || t === 'error') && msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      if (p) { this.pending.delete(msg.id); p(msg); return; }
    }
    if (t === 'hello' && !this.hello) { this.hello = true; if (this._resolveHello) this._resolveHello(this); return; }
    if (this.onFrame) this.onFrame(msg);
  }
  _closed(code) {
    if (this.closed) return;
    this.closed = true; this.closeCode = code;
    for (const p of this.pending.values()) p({ type: 'error', code: 'closed' });
    this.pending.clear();
    if (this.onClose) this.onClose(code);
  }
  request(type, fields) {
    const id = String(this.nextId++);
    return new Promise((resolve) => {
      if (this.closed) { resolve({ ok: false, code: 'closed' }); return; }
      this.pending.set(id, (msg) => resolve(msg.type === 'ack' ? { ok: true, data: msg.data } : { ok: false, code: msg.code, reason: msg.reason }));
      this._send(JSON.stringify({ type, id, ...fields }));
    });
  }
  notify(type, fields) { if (!this.closed) this._send(JSON.stringify({ type, ...fields })); }
  join(room) { return this.request('room.join', { room }); }
  send(room, content) {
    return this.request('message.send', { room, client_msg_id: `${runTag}-${this.tag}-${this.nextId}`, kind: 'text', content });
  }
}

class WsClient extends BaseClient {
  open() {
    return new Promise((resolve, reject) => {
      this._resolveHello = resolve;
      const ws = this.ws = new WebSocket(this.url, { perMessageDeflate: false });
      ws.on('message', (data) => this._payload(data, 0, data.length));
      ws.on('error', (e) => { if (!this.hello) reject(e); });
      ws.on('close', (code) => { if (!this.hello) reject(new Error(`closed ${code} before hello`)); this._closed(code); });
    });
  }
  _send(text) { this.ws.send(text); }
  close() { this.closing = true; try { this.ws.terminate(); } catch (e) { /* gone */ } }
}

// A minimal RFC 6455 client: HTTP upgrade by hand, unmasked server frames parsed in place, client
// frames masked with a zero key (valid: the server unmasks with whatever key is sent).
class RawClient extends BaseClient {
  open() {
    return new Promise((resolve, reject) => {
      this._resolveHello = resolve;
      const u = new URL(this.url);
      const sock = this.sock = net.connect({ host: u.hostname, port: Number(u.port) });
      sock.setNoDelay(true);
      let upgraded = false; let head = ''; this.reads = 0;
      this.rest = null;
      sock.on('connect', () => {
        sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
          'Sec-WebSocket-Version: 13\r\n\r\n');
      });
      sock.on('data', (chunk) => {
        if (!upgraded) {
          head += chunk.toString('latin1');
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          if (!head.startsWith('HTTP/1.1 101')) { reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`)); sock.destroy(); return; }
          upgraded = true;
          chunk = Buffer.from(head.slice(end + 4), 'latin1');
          if (!chunk.length) return;
        }
        this.reads++;
        this._frames(chunk);
      });
      sock.on('error', (e) => { if (!this.hello) reject(e); });
      sock.on('close', () => { if (!this.hello) reject(new Error('closed before hello')); this._closed(this.closeCode || 1006); });
    });
  }
  _frames(chunk) {
    let buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    let off = 0;
    const n = buf.length;
    while (n - off >= 2) {
      const b0 = buf[off]; let len = buf[off + 1] & 0x7f; let hdr = 2;
      if (len === 126) { if (n - off < 4) break; len = buf.readUInt16BE(off + 2); hdr = 4; }
      else if (len === 127) { if (n - off < 10) break; len = Number(buf.readBigUInt64BE(off + 2)); hdr = 10; }
      if (n - off < hdr + len) break;
      const op = b0 & 0x0f; const s = off + hdr; const e = s + len;
      if (op === 1) this._payload(buf, s, e);
      else if (op === 9) this._control(0x8a, buf.subarray(s, e)); // ping → pong
      else if (op === 8) { this.closeCode = len >= 2 ? buf.readUInt16BE(s) : 1005; this.sock.end(); }
      off = e;
    }
    this.rest = off < n ? buf.subarray(off) : null;
  }
  _control(b0, payload) { this._write(b0, payload); }
  _send(text) { this._write(0x81, Buffer.from(text)); }
  _write(b0, payload) {
    const n = payload.length;
    let head;
    if (n < 126) { head = Buffer.from([b0, 0x80 | n, 0, 0, 0, 0]); }
    else if (n <= 0xffff) { head = Buffer.alloc(8); head[0] = b0; head[1] = 0x80 | 126; head.writeUInt16BE(n, 2); }
    else { head = Buffer.alloc(14); head[0] = b0; head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(n), 2); }
    this.sock.write(Buffer.concat([head, payload]));
  }
  close() { this.closing = true; try { this.sock.destroy(); } catch (e) { /* gone */ } }
}

function makeClient(kind, url, token, tag) {
  const c = kind === 'ws' ? new WsClient(url, token) : new RawClient(url, token);
  c.tag = tag;
  return c;
}

// Open `count` clients, `concurrency` at a time; make(i) builds client i, roomOf(i) (optional)
// is joined after hello. Returns {clients (index-aligned, null when failed), failed, firstError}.
async function openMany(count, make, roomOf, concurrency) {
  const clients = new Array(count).fill(null);
  let next = 0; let failed = 0; let firstError = null;
  async function worker() {
    while (next < count) {
      const i = next++;
      try {
        const c = make(i);
        await withTimeout(c.open(), 30000, 'open');
        if (roomOf) {
          const r = await withTimeout(c.join(roomOf(i)), 60000, 'join');
          if (!r.ok) throw new Error(`join refused: ${r.code} ${r.reason || ''}`);
          c.joinData = r.data;
        }
        clients[i] = c;
      } catch (e) {
        failed++;
        if (!firstError) firstError = String(e.message || e);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { clients, failed, firstError };
}

// The fan-out's parameters from cfg: P publishers each send perPub messages with winPer unacked.
function fanoutParams() {
  const urls = cfg.urls; const nPub = cfg.publishers || urls.length; const total = cfg.messages;
  return {
    urls, nSubs: cfg.subs, nPub, room: seed.rooms.fanout, total, perPub: Math.ceil(total / nPub),
    winPer: Math.max(1, Math.round((cfg.window || 50) / nPub)), warm: cfg.warmup ?? 20,
    timeoutMs: (cfg.timeout_s || 120) * 1000,
  };
}

// Open the publishers (round-robin over the urls, or all on the first) and send the warm-up
// messages (tag "w", not counted: JITs, SQL caches, connection pools, the Redis path).
async function openPublishers({ urls, nPub, room, warm }) {
  const pubs = [];
  for (let j = 0; j < nPub; j++) {
    const p = makeClient('ws', urls[cfg.publishers_on_first ? 0 : j % urls.length], seed.publisher.token, `p${j}`);
    await withTimeout(p.open(), 20000, 'publisher open');
    pubs.push(p);
  }
  for (let i = 0; i < warm; i++) await pubs[i % nPub].send(room, makeContent('w'));
  return pubs;
}

// Each publisher sends perPub messages with at most winPer unacked, send times from `clock`,
// until `deadline` (on that clock). Resolves with the ack latencies and counts.
async function publish(pubs, room, perPub, winPer, clock, deadline) {
  const out = { ackLat: [], acked: 0, errors: 0, firstErr: null };
  await Promise.all(pubs.map((pub) => new Promise((resolve) => {
    let inFlight = 0; let sent = 0;
    const pump = () => {
      while (inFlight < winPer && sent < perPub && clock() < deadline) {
        inFlight++; sent++;
        const ts = clock();
        pub.send(room, makeContent('m', ts)).then((r) => {
          out.ackLat.push(clock() - ts); inFlight--;
          if (r.ok) out.acked++; else { out.errors++; if (!out.firstErr) out.firstErr = r.code; }
          if (sent >= perPub && inFlight === 0) resolve(); else pump();
        });
      }
      if (inFlight === 0) resolve();
    };
    pump();
  })));
  return out;
}

// --- C subscribers (client "c") -----------------------------------------------------------------
// Spawns cfg.c_subs (subs.c) with the spec on stdin; resolves .ready, .warm and .result from its
// stdout lines. Send times in this mode are CLOCK_MONOTONIC ms (monoNow), which C reads too.
const monoNow = () => Number(process.hrtime.bigint()) / 1e6;
function spawnCSubs(urls, tokens, room, warm, messages, timeoutMs, concurrency) {
  const child = spawn(cfg.c_subs, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [`${tokens.length} ${warm} ${messages} ${timeoutMs} ${concurrency}`, JSON.stringify(room)];
  tokens.forEach((tok, i) => {
    const u = new URL(urls[i % urls.length]);
    lines.push(`${u.hostname} ${u.port} ${i % urls.length} ${encodeURIComponent(tok)}`);
  });
  child.stdin.end(lines.join('\n') + '\n');
  const waiters = {};
  const promise = (name) => new Promise((resolve, reject) => { waiters[name] = { resolve, reject }; });
  const out = { child, ready: promise('READY'), warm: promise('WARM'), result: promise('result') };
  const fail = (e) => { for (const w of Object.values(waiters)) w.reject(e); };
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'READY' || line === 'WARM') { waiters[line].resolve(); return; }
    const r = JSON.parse(line);
    if (r.error) fail(new Error(`subs: ${r.error}`)); else waiters.result.resolve(r);
  });
  child.on('exit', (code) => fail(new Error(`subs exited with ${code}`)));
  for (const p of [out.ready, out.warm, out.result]) p.catch(() => {});
  return out;
}

async function fanoutC() {
  const params = fanoutParams();
  const { urls, nSubs, nPub, room, perPub, winPer, warm, timeoutMs } = params;
  phase('open_start');
  const tOpen = now();
  const subs = spawnCSubs(urls, seed.subs.slice(0, nSubs), room, warm, perPub * nPub, timeoutMs, cfg.concurrency || 50);
  try {
    await withTimeout(subs.ready, 120000, 'C subscribers open');
    const openS = (now() - tOpen) / 1000;
    phase('open_end');
    const pubs = await openPublishers(params);
    await withTimeout(subs.warm, 20000, 'warm-up deliveries');
    await sleep(300);
    phase('start');
    const t0 = monoNow();
    const { ackLat, acked, errors, firstErr } = await publish(pubs, room, perPub, winPer, monoNow, t0 + timeoutMs);
    const sendEnd = monoNow();
    const r = await withTimeout(subs.result, timeoutMs + 10000, 'C subscribers result');
    const complete = r.deliveries >= r.expected;
    const elapsed = ((complete ? r.last_delivery_ms : monoNow()) - t0) / 1000;
    phase('end');
    const cpuS = clientCpuS() + r.cpu_s;
    for (const p of pubs) p.close();
    return {
      subscribers: nSubs, publishers: nPub, processes: urls.length, client: 'c',
      messages: perPub * nPub, acked, errors, first_error: firstErr, unexpected_closes: r.unexpected_closes,
      unparsed: r.unparsed, deliveries: r.deliveries, expected: r.expected, complete,
      deliveries_per_url: r.deliveries_per_url,
      open_s: Math.round(openS * 100) / 100, elapsed_s: Math.round(elapsed * 1000) / 1000,
      send_s: Math.round(sendEnd - t0) / 1000,
      deliveries_per_s: Math.round(r.deliveries / elapsed),
      latency_ms: r.latency_ms, ack_ms: percentiles(ackLat, ackLat.length),
      client_cpu_s: Math.round(cpuS * 100) / 100,
      subs_cpu_s: r.cpu_s, subs_sys_s: r.sys_s,
      frames_per_read: r.reads ? Math.round(r.deliveries / r.reads * 100) / 100 : null,
    };
  } finally {
    subs.child.kill('SIGKILL');
  }
}

// --- fan-out ------------------------------------------------------------------------------------
async function fanout() {
  const params = fanoutParams();
  const { urls, nSubs, nPub, room, total, perPub, winPer, warm, timeoutMs } = params;
  const lat = new Float64Array(nSubs * total);
  let delivered = 0; let warmDelivered = 0; let lastDelivery = 0; let bad = 0;
  const perUrl = new Array(urls.length).fill(0);
  const onNewFor = (u) => (ts) => {
    if (ts < 0) { warmDelivered++; return; }
    const t = now();
    if (Number.isNaN(ts)) { bad++; return; }
    if (delivered < lat.length) lat[delivered] = t - ts;
    delivered++; perUrl[u]++;
    lastDelivery = t;
  };
  let closes = 0;
  phase('open_start');
  const tOpen = now();
  const subs = await openMany(nSubs, (i) => {
    const u = i % urls.length;
    const c = makeClient(cfg.client || 'raw', urls[u], seed.subs[i], `s${i}`);
    c.onNew = onNewFor(u);
    c.onClose = () => { if (!c.closing) closes++; };
    return c;
  }, () => room, cfg.concurrency || 50);
  const openS = (now() - tOpen) / 1000;
  phase('open_end');
  if (subs.failed) throw new Error(`${subs.failed} subscribers failed: ${subs.firstError}`);
  const pubs = await openPublishers(params);
  const n = nSubs;
  const warmDeadline = now() + 20000;
  while (warmDelivered < n * warm && now() < warmDeadline) await sleep(5);
  if (warmDelivered < n * warm) throw new Error(`warm-up: ${warmDelivered} of ${n * warm} deliveries`);
  await sleep(300);

  const expected = n * perPub * nPub;
  const reads0 = subs.clients.reduce((a, c) => a + (c.reads || 0), 0);
  phase('start');
  const t0 = now();
  const { ackLat, acked, errors, firstErr } = await publish(pubs, room, perPub, winPer, now, t0 + timeoutMs);
  const sendEnd = now();
  while (delivered < expected && now() - t0 < timeoutMs) await sleep(2);
  const elapsed = ((delivered >= expected ? lastDelivery : now()) - t0) / 1000;
  phase('end');
  const cpuS = clientCpuS();
  const reads = subs.clients.reduce((a, c) => a + (c.reads || 0), 0) - reads0;
  const nLat = Math.min(delivered, lat.length);
  for (const c of subs.clients) if (c) c.close();
  for (const p of pubs) p.close();
  return {
    subscribers: n, publishers: nPub, processes: urls.length, client: cfg.client || 'raw',
    messages: perPub * nPub, acked, errors, first_error: firstErr, unexpected_closes: closes, unparsed: bad,
    deliveries: delivered, expected, complete: delivered >= expected, deliveries_per_url: perUrl,
    open_s: Math.round(openS * 100) / 100, elapsed_s: Math.round(elapsed * 1000) / 1000,
    send_s: Math.round(sendEnd - t0) / 1000,
    deliveries_per_s: Math.round(delivered / elapsed),
    latency_ms: percentiles(lat, nLat), ack_ms: percentiles(ackLat, ackLat.length),
    client_cpu_s: cpuS,
    // message.new frames per TCP read by a subscriber (raw client only): how many messages
    // the server's writes to one socket carry, on average.
    frames_per_read: reads ? Math.round(delivered / reads * 100) / 100 : null,
  };
}

// --- soak ---------------------------------------------------------------------------------------
async function soak() {
  const urls = cfg.urls; const size = cfg.room_size || seed.idle_room_size; const nConns = cfg.conns;
  const nRooms = Math.ceil(nConns / size);
  const rooms = seed.rooms.idle.slice(0, nRooms);
  const durMs = cfg.duration_s * 1000;
  const counters = { error_frames: 0, unexpected_closes: 0, send_errors: 0, dup: 0, gap: 0, out_of_room: 0,
    typing_sent: 0, typing_received: 0, other_frames: 0, unparsed: 0 };
  const errorSamples = [];
  const note = (what) => { if (errorSamples.length < 20) errorSamples.push(what); };
  const lat = []; const latAt = []; let delivered = 0;
  let measuring = false;
  const closesAt = [];

  phase('open_start');
  const tOpen = now();
  const opened = await openMany(nConns, (i) => {
    const c = makeClient('ws', urls[i % urls.length], seed.subs[i], `c${i}`);
    c.room = rooms[Math.floor(i / size)];
    c.first = null; c.last = null; c.count = 0;
    c.onNew = (ts, buf, start, end) => {
      // Full parse here: the soak checks every seq, it is not a throughput test.
      const msg = JSON.parse(buf.toString('utf8', start, end)).message;
      if (String(msg.room) !== String(c.room)) { counters.out_of_room++; note(`c${i}: message for room ${msg.room}`); return; }
      const seq = msg.seq;
      if (c.last === null) c.first = seq;
      else if (seq <= c.last) { counters.dup++; note(`c${i} room ${c.room}: seq ${seq} after ${c.last}`); return; }
      else if (seq !== c.last + 1) { counters.gap++; note(`c${i} room ${c.room}: seq ${seq} after ${c.last} (gap)`); }
      c.last = seq; c.count++;
      if (ts > 0 && measuring) { const t = now(); lat.push(t - ts); latAt.push(t); delivered++; }
    };
    c.onFrame = (msg) => {
      if (msg.type === 'error') { counters.error_frames++; note(`c${i}: error frame ${msg.code} ${msg.reason || ''}`); }
      else if (msg.type === 'typing') counters.typing_received++;
      else counters.other_frames++;
    };
    c.onClose = (code) => {
      if (!c.closing) { counters.unexpected_closes++; closesAt.push(code); note(`c${i}: closed ${code}`); }
    };
    return c;
  }, (i) => rooms[Math.floor(i / size)], cfg.concurrency || 50);
  const openS = (now() - tOpen) / 1000;
  phase('open_end');
  if (opened.failed) throw new Error(`${opened.failed} connections failed to open/join: ${opened.firstError}`);
  const conns = opened.clients;
  const members = rooms.map((_, r) => conns.slice(r * size, (r + 1) * size));
  await sleep(2000); // presence announcements settle

  const acked = rooms.map(() => []); // seqs acked per room
  const ackedMax = rooms.map(() => 0);
  const ackLat = []; const ackAt = []; let inFlight = 0; let sent = 0;
  const typingLead = cfg.typing_lead_ms ?? 300;
  const interval = 1000 / cfg.rate;
  const timers = [];
  let stopping = false;
  phase('start');
  measuring = true;
  const t0 = now();
  const sendOne = (r) => {
    if (stopping) return;
    const c = members[r][Math.floor(Math.random() * members[r].length)];
    if (c.closed) return;
    if (cfg.typing !== false) { c.notify('typing', { room: rooms[r], active: true }); counters.typing_sent++; }
    setTimeout(() => {
      if (c.closed) return;
      const ts = now(); inFlight++; sent++;
      c.send(rooms[r], makeContent('m')).then((res) => {
        inFlight--; ackLat.push(now() - ts); ackAt.push(now());
        if (res.ok) { const q = res.data.message.seq; acked[r].push(q); if (q > ackedMax[r]) ackedMax[r] = q; }
        else { counters.send_errors++; note(`c send in room ${rooms[r]}: ${res.code} ${res.reason || ''}`); }
      });
      if (cfg.typing !== false) { c.notify('typing', { room: rooms[r], active: false }); counters.typing_sent++; }
    }, typingLead);
  };
  if (cfg.rate > 0) rooms.forEach((_, r) => {
    // Each room on its own timer, phases spread over one interval so rooms do not send in lockstep.
    timers.push(setTimeout(() => {
      sendOne(r);
      timers.push(setInterval(() => sendOne(r), interval));
    }, Math.random() * interval));
  });
  await sleep(durMs);
  stopping = true;
  for (const t of timers) { clearTimeout(t); clearInterval(t); }
  phase('traffic_end');
  const sendEnd = now();
  // Drain: every ack back, and every connection up to its room's last acked seq.
  const drainDeadline = now() + (cfg.drain_s || 30) * 1000;
  const caughtUp = () => inFlight === 0 && conns.every((c, i) => {
    const r = Math.floor(i / size);
    return c.closed || acked[r].length === 0 || c.last === ackedMax[r];
  });
  await sleep(typingLead + 100);
  while (now() < drainDeadline && !caughtUp()) await sleep(100);
  const drainS = (now() - sendEnd) / 1000;
  measuring = false;
  phase('end');
  const cpuS = clientCpuS();
  // run.py reads the servers' /metrics now, before 2,000 sockets close at once.
  await sleep((cfg.hold_after_end_s ?? 2) * 1000);

  // Verification: per room, the acked seqs must be contiguous; every connection of the room must
  // have received exactly those (first == min, last == max, count == max - min + 1, no dup/gap).
  let lost = 0; let extra = 0; let roomsBad = 0; let connsBad = 0; let ackedTotal = 0;
  rooms.forEach((room, r) => {
    const a = acked[r].slice().sort((x, y) => x - y);
    ackedTotal += a.length;
    if (!a.length) return;
    const lo = a[0]; const hi = a[a.length - 1];
    if (hi - lo + 1 !== a.length || new Set(a).size !== a.length) { roomsBad++; note(`room ${room}: acked seqs not contiguous (${a.length} acks over ${lo}..${hi})`); }
    for (const c of members[r]) {
      const want = a.length;
      const ok = c.first === lo && c.last === hi && c.count === want;
      if (!ok) {
        connsBad++;
        const got = c.count || 0;
        if (got < want) lost += want - got; else extra += got - want;
        note(`${c.tag} room ${room}: got ${got} (${c.first}..${c.last}), want ${want} (${lo}..${hi})`);
      }
    }
  });
  const expected = members.reduce((s, m, r) => s + m.length * acked[r].length, 0);
  const received = conns.reduce((s, c) => s + c.count, 0);
  // Latency by window of receive time (where in the run the tail comes from).
  const win = (cfg.timeline_s || 30) * 1000;
  const bucket = (vals, at) => {
    const m = new Map();
    for (let i = 0; i < vals.length; i++) {
      const b = Math.floor((at[i] - t0) / win);
      if (!m.has(b)) m.set(b, []);
      m.get(b).push(vals[i]);
    }
    return m;
  };
  const dB = bucket(lat, latAt); const aB = bucket(ackLat, ackAt);
  const timeline = [...new Set([...dB.keys(), ...aB.keys()])].sort((x, y) => x - y).map((b) => {
    const d = dB.get(b) || []; const a = aB.get(b) || [];
    return { from_s: b * win / 1000, deliveries: d.length, delivery: percentiles(d, d.length), acks: a.length,
      ack: percentiles(a, a.length) };
  });
  for (const c of conns) c.close();
  const protocolErrors = counters.error_frames + counters.unexpected_closes + counters.send_errors + counters.out_of_room;
  return {
    conns: conns.length, rooms: rooms.length, room_size: size, processes: urls.length,
    rate_per_room: cfg.rate, duration_s: cfg.duration_s, open_s: Math.round(openS * 100) / 100,
    sent, acked: ackedTotal, expected_deliveries: expected, received_deliveries: received,
    lost, extra, rooms_bad: roomsBad, conns_bad: connsBad, protocol_errors: protocolErrors,
    counters, close_codes: closesAt.slice(0, 20), error_samples: errorSamples,
    drain_s: Math.round(drainS * 100) / 100,
    send_s: Math.round(sendEnd - t0) / 1000,
    deliveries_per_s: Math.round(delivered / ((sendEnd - t0) / 1000)),
    latency_ms: percentiles(lat, lat.length), ack_ms: percentiles(ackLat, ackLat.length),
    client_cpu_s: cpuS, timeline,
  };
}

(async () => {
  let result;
  try {
    if (cfg.scenario === 'fanout') result = await (cfg.client === 'c' ? fanoutC() : fanout());
    else if (cfg.scenario === 'soak') result = await soak();
    else throw new Error(`unknown scenario ${cfg.scenario}`);
  } catch (e) {
    result = { error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  setTimeout(() => process.exit(result.error ? 1 : 0), 100);
})();
