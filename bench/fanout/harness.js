// Client harness for the chat fan-out benchmark (bench/fanout/run.py drives it).
//
//   node bench/fanout/harness.js '<json config>'
//
// Config: {kind: "podium"|"sio", url, scenario: "fanout"|"rate"|"idle"|"senders", seed: path
// (Podium tokens and room ids, from seed.py), ...scenario parameters}. Prints one JSON line
// with the results on stdout (the idle scenario first prints {"ready":...} and then holds its
// connections until stdin closes, SIGTERM, or hold_s passes).
//
// Podium is driven with the raw `ws` package and the PROTOCOL §2 envelope; python-socketio and
// Node socket.io are driven with `socket.io-client` (websocket transport only), since both speak
// the socket.io protocol. Every loop is bounded in count and time and the process exits by itself.
'use strict';
const fs = require('fs');
const { now, startHarness, makeContent, contentTime, withTimeout, percentiles } = require('../harness_common');
const WebSocket = require('ws');
const { io } = require('socket.io-client');

const cfg = JSON.parse(process.argv[2]);
const seed = cfg.seed ? JSON.parse(fs.readFileSync(cfg.seed, 'utf8')) : null;
const runTag = startHarness(cfg);


// --- clients -------------------------------------------------------------------------------
class PodiumClient {
  constructor(url, token) {
    this.url = `${url}?token=${encodeURIComponent(token)}`;
    this.nextId = 1;
    this.pending = new Map();
    this.onMessageNew = null;
  }
  open() {
    return new Promise((resolve, reject) => {
      const ws = this.ws = new WebSocket(this.url, { perMessageDeflate: false });
      ws.on('upgrade', (res) => { this.extensions = res.headers['sec-websocket-extensions'] || ''; });
      let hello = false;
      ws.on('message', (data) => {
        const msg = JSON.parse(data);
        const t = msg.type;
        if (t === 'message.new') {
          if (this.onFrame) this.onFrame(data.length); // payload bytes of this WebSocket message
          if (this.onMessageNew) this.onMessageNew(msg.message.content);
        } else if (t === 'ack' || t === 'error') {
          const p = this.pending.get(msg.id);
          if (p) { this.pending.delete(msg.id); p(msg); }
        } else if (t === 'hello' && !hello) {
          hello = true;
          resolve(this);
        }
      });
      ws.on('error', (e) => { if (!hello) reject(e); });
      ws.on('close', (code) => {
        if (!hello) reject(new Error(`closed ${code} before hello`));
        for (const p of this.pending.values()) p({ type: 'error', code: 'closed' });
        this.pending.clear();
      });
    });
  }
  // Resolves with {ok, data|code}.
  request(type, fields) {
    const id = String(this.nextId++);
    return new Promise((resolve) => {
      this.pending.set(id, (msg) => resolve(msg.type === 'ack' ? { ok: true, data: msg.data } : { ok: false, code: msg.code }));
      this.ws.send(JSON.stringify({ type, id, ...fields }));
    });
  }
  join(room) { return this.request('room.join', { room }); }
  send(room, content) {
    return this.request('message.send', { room, client_msg_id: `${runTag}-${this.nextId}`, kind: 'text', content });
  }
  close() { try { this.ws.terminate(); } catch (e) { /* already gone */ } }
}

class SioClient {
  constructor(url) { this.url = url; this.nextId = 1; this.onMessageNew = null; }
  open() {
    return new Promise((resolve, reject) => {
      // perMessageDeflate: socket.io-client offers permessage-deflate unless told not to, and
      // python-socketio's Tornado handler accepts it (Node socket.io's default refuses it): the
      // main rows turn the offer off (cfg.deflate false) so both socket.io servers run alike.
      const s = this.socket = io(this.url, { transports: ['websocket'], forceNew: true, reconnection: false,
        timeout: 15000, perMessageDeflate: cfg.deflate ? { threshold: 0 } : false });
      s.on('message.new', (d) => { if (this.onMessageNew) this.onMessageNew(d.message.content); });
      s.io.on('open', () => {
        const eng = s.io.engine;
        const ws = eng.transport && eng.transport.ws;
        if (ws && ws.extensions !== undefined) this.extensions = String(ws.extensions || '');
        // Engine.io packet "4" + socket.io packet: the WebSocket message payload is 1 + its length.
        eng.on('packet', (pk) => {
          if (this.onFrame && pk.type === 'message' && typeof pk.data === 'string' && pk.data.startsWith('2["message.new"')) {
            this.onFrame(1 + Buffer.byteLength(pk.data));
          }
        });
      });
      s.once('connect', () => resolve(this));
      s.once('connect_error', (e) => reject(e));
    });
  }
  request(event, data) {
    return new Promise((resolve) => this.socket.emit(event, data, (resp) => resolve({ ok: true, data: resp })));
  }
  join(room) { return this.request('join', room); }
  send(room, content) {
    return this.request('message.send', { room, client_msg_id: `${runTag}-${this.nextId++}`, kind: 'text', content });
  }
  close() { try { this.socket.disconnect(); } catch (e) { /* already gone */ } }
}

// kind "podium": Podium's envelope over raw `ws` (also spoken by tornado_floor.py); "sio": socket.io.
function makeClient(token) {
  return cfg.kind === 'podium' ? new PodiumClient(cfg.url, token) : new SioClient(cfg.url);
}
function roomId(name, index) {
  if (cfg.kind === 'podium') return name === 'idle' ? seed.rooms.idle[index] : seed.rooms[name];
  return name === 'idle' ? `idle-${index}` : name;
}

// Open and join `count` clients, `concurrency` at a time. tokenOf(i) / roomOf(i) pick per client.
async function openMany(count, tokenOf, roomOf, concurrency, setup) {
  const clients = new Array(count);
  let next = 0; let failed = 0; let firstError = null;
  async function worker() {
    while (next < count) {
      const i = next++;
      try {
        const c = makeClient(tokenOf(i));
        if (setup) setup(c, i);
        await withTimeout(c.open(), 20000, 'open');
        if (roomOf) {
          const r = await withTimeout(c.join(roomOf(i)), 60000, 'join');
          if (!r.ok) throw new Error(`join refused: ${r.code}`);
        }
        clients[i] = c;
      } catch (e) {
        failed++;
        if (!firstError) firstError = String(e.message || e);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { clients: clients.filter(Boolean), failed, firstError };
}


function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// run.py samples the server's CPU time when it reads these lines (pipes are synchronous on Linux).
let cpuMark = null;
function phase(name) {
  if (name === 'start') cpuMark = process.cpuUsage();
  process.stdout.write(`PHASE ${name}\n`);
}
function clientCpuS() {
  const d = process.cpuUsage(cpuMark);
  return Math.round((d.user + d.system) / 1e4) / 100;
}

// Subscribers + one publisher in one room. mode "window": `messages` sends with at most `window`
// unacked; mode "rate": `rate` sends/s for `duration_s`, not waiting for acks.
async function fanout() {
  const nSubs = cfg.subs;
  const room = roomId('fanout');
  const tokens = seed ? seed.subs : [];
  const total = cfg.scenario === 'rate' ? Math.round(cfg.rate * cfg.duration_s) : cfg.messages;
  const lat = new Float64Array(nSubs * total);
  const sentAt = new Float64Array(nSubs * total); // send time of each delivery, for the timeline
  let delivered = 0; let warmDelivered = 0; let lastDelivery = 0;
  const onNew = (content) => {
    const t = now();
    if (content.charCodeAt(0) === 119 /* w */) { warmDelivered++; return; }
    if (delivered < lat.length) {
      const ts = contentTime(content);
      lat[delivered] = t - ts;
      sentAt[delivered] = ts;
    }
    delivered++;
    lastDelivery = t;
  };
  phase('open_start');
  const tOpen = now();
  const subs = await openMany(nSubs, (i) => tokens[i], () => room, cfg.concurrency || 50,
    (c) => { c.onMessageNew = onNew; });
  const openS = (now() - tOpen) / 1000;
  phase('open_end');
  if (subs.failed) throw new Error(`${subs.failed} subscribers failed: ${subs.firstError}`);
  const pub = makeClient(seed ? seed.publisher.token : null);
  await withTimeout(pub.open(), 20000, 'publisher open');
  const n = subs.clients.length;

  // Warm-up (not counted): lets JITs, caches and connection pools settle.
  const warm = cfg.warmup ?? 20;
  for (let i = 0; i < warm; i++) await pub.send(room, makeContent('w'));
  const warmDeadline = now() + 20000;
  while (warmDelivered < n * warm && now() < warmDeadline) await sleep(5);
  await sleep(200);

  const ackLat = []; let acked = 0; let errors = 0; let firstErr = null; let lastAck = 0;
  const expected = n * total;
  const timeoutMs = (cfg.timeout_s || 120) * 1000;
  phase('start');
  const t0 = now();
  const sendLag = [];
  const sendOne = () => {
    const ts = now();
    return pub.send(room, makeContent('m')).then((r) => {
      lastAck = now();
      ackLat.push(lastAck - ts);
      if (r.ok) acked++; else { errors++; if (!firstErr) firstErr = r.code; }
    });
  };
  let sent = 0;
  if (cfg.scenario === 'rate') {
    const interval = 1000 / cfg.rate;
    while (sent < total && now() - t0 < timeoutMs) {
      const due = t0 + sent * interval;
      const wait = due - now();
      if (wait > 1) await sleep(wait - 0.5); // setTimeout granularity; catch up when late
      while (sent < total && now() >= t0 + sent * interval - 0.5) {
        sendLag.push(Math.max(0, now() - (t0 + sent * interval)));
        sendOne(); sent++;
      }
    }
  } else {
    const window = cfg.window || 50;
    await new Promise((resolve) => {
      let inFlight = 0;
      const pump = () => {
        while (inFlight < window && sent < total && now() - t0 < timeoutMs) {
          inFlight++; sent++;
          sendOne().then(() => { inFlight--; if (sent >= total && inFlight === 0) resolve(); else pump(); });
        }
        if (inFlight === 0) resolve();
      };
      pump();
    });
  }
  const sendEnd = now();
  while (delivered < expected && now() - t0 < timeoutMs) await sleep(2);
  const elapsed = ((delivered >= expected ? lastDelivery : now()) - t0) / 1000;
  phase('end');
  const cpuS = clientCpuS();
  // Latency by 1 s bucket of send time: where in the run the tail comes from.
  const nLat = Math.min(delivered, lat.length);
  const buckets = new Map();
  for (let i = 0; i < nLat; i++) {
    const b = Math.floor((sentAt[i] - t0) / 1000);
    let arr = buckets.get(b);
    if (!arr) buckets.set(b, arr = []);
    arr.push(lat[i]);
  }
  const timeline = [...buckets.keys()].sort((a, b) => a - b).map((b) => {
    const arr = buckets.get(b); const pc = percentiles(arr, arr.length);
    return { s: b, n: arr.length, p50: pc.p50, p99: pc.p99, max: pc.max };
  });
  for (const c of subs.clients) c.close();
  pub.close();
  return {
    subscribers: n, messages: total, sent, acked, errors, first_error: firstErr,
    deliveries: delivered, expected, complete: delivered >= expected,
    open_s: Math.round(openS * 100) / 100,
    elapsed_s: Math.round(elapsed * 1000) / 1000,
    send_s: Math.round((sendEnd - t0)) / 1000,
    deliveries_per_s: Math.round(delivered / elapsed),
    sends_per_s: Math.round(acked / ((lastAck - t0) / 1000)),
    latency_ms: percentiles(lat, nLat),
    ack_ms: percentiles(ackLat, ackLat.length),
    send_lag_ms: cfg.scenario === 'rate' ? percentiles(sendLag, sendLag.length) : undefined,
    client_cpu_s: cpuS,
    timeline,
  };
}

// Both send modes against one set of subscribers (scenario "modes", run.py's scenario 1).
// A message is complete when the publisher has its ack AND every subscriber has received it.
// Mode {name, window}: at most `window` messages not yet complete; window 1 is "one at a time"
// (each send waits until every subscriber got the previous one: how a class chats). Each mode
// sends for duration_s (at most max_messages) and then waits for its last messages.
// The content is padded so that the message.new WebSocket payload each subscriber receives is
// cfg.frame_bytes long for every server (calibrated on the first warm-up message, then checked
// on every measured delivery to subscriber 0).
async function modes() {
  const nSubs = cfg.subs;
  const room = roomId('fanout');
  const tokens = seed ? seed.subs : [];
  const maxMsgs = cfg.max_messages || 20000;
  const latCap = Math.min(nSubs * maxMsgs, 4000000);
  const lat = new Float64Array(latCap);
  const counts = new Int32Array(maxMsgs);
  const acked = new Uint8Array(maxMsgs);
  let nLat = 0; let delivered = 0; let warmDelivered = 0; let onComplete = null;
  let n = nSubs;
  const onNew = (content) => {
    const t = now();
    if (content.charCodeAt(0) !== 109 /* m */) { warmDelivered++; return; }
    delivered++;
    if (nLat < latCap) lat[nLat++] = t - contentTime(content);
    const j = content.indexOf('|', 2);
    const idx = parseInt(content.slice(j + 1), 10);
    if (++counts[idx] === n && acked[idx] && onComplete) onComplete(idx);
  };
  let frameLast = 0; let frameMin = Infinity; let frameMax = 0;
  phase('open_start');
  const tOpen = now();
  const subs = await openMany(nSubs, (i) => tokens[i], () => room, cfg.concurrency || 50,
    (c, i) => { c.onMessageNew = onNew; if (i === 0) c.onFrame = (len) => { frameLast = len; }; });
  const openS = (now() - tOpen) / 1000;
  phase('open_end');
  if (subs.failed) throw new Error(`${subs.failed} subscribers failed: ${subs.firstError}`);
  n = subs.clients.length;
  const pub = makeClient(seed ? seed.publisher.token : null);
  let pubGot = 0; // message.new frames the publisher received: must stay 0 (excluded from its broadcast)
  pub.onMessageNew = () => { pubGot++; };
  await withTimeout(pub.open(), 20000, 'publisher open');
  const extensions = subs.clients[0].extensions || '';

  const content = (tag, len, idx) => {
    const head = `${tag}|${now().toFixed(3)}|${idx}|`;
    return head + 'x'.repeat(Math.max(0, len - head.length));
  };
  const waitWarm = async (k) => {
    const dl = now() + 30000;
    while (warmDelivered < n * k && now() < dl) await sleep(2);
    if (warmDelivered < n * k) throw new Error(`warm-up: ${warmDelivered}/${n * k} delivered`);
  };
  // Calibration: one message at the base length; the padding makes up the difference.
  const base = 100;
  await pub.send(room, content('w', base, 0));
  await waitWarm(1);
  const natural = frameLast;
  const target = cfg.frame_bytes || natural;
  if (natural > target) throw new Error(`frame of ${natural} B at the base content exceeds frame_bytes ${target}`);
  const len = base + (target - natural);
  const warm = cfg.warmup ?? 20;
  for (let i = 0; i < warm; i++) { await pub.send(room, content('w', len, 0)); await waitWarm(2 + i); }
  await sleep(200);

  const out = { subscribers: n, frame_natural_bytes: natural, frame_target_bytes: target, content_bytes: len,
    extensions, open_s: Math.round(openS * 100) / 100 };
  for (const mode of cfg.modes) {
    counts.fill(0); acked.fill(0); nLat = 0; delivered = 0; frameMin = Infinity; frameMax = 0;
    const ackLat = []; let errors = 0; let firstErr = null; let sent = 0; let completed = 0; let inFlight = 0;
    const durMs = (mode.duration_s || cfg.duration_s || 4) * 1000;
    const timeoutMs = (cfg.timeout_s || 60) * 1000;
    const sub0 = subs.clients[0];
    sub0.onFrame = (l) => { if (l < frameMin) frameMin = l; if (l > frameMax) frameMax = l; };
    phase(`start:${mode.name}`);
    const cpu0 = process.cpuUsage();
    const t0 = now(); let tLast = t0;
    await new Promise((resolve) => {
      let stopped = false;
      const finish = () => { if (!stopped) { stopped = true; resolve(); } };
      const guard = setTimeout(finish, timeoutMs);
      const pump = () => {
        while (inFlight < mode.window && sent < maxMsgs && now() - t0 < durMs) {
          const idx = sent++; inFlight++;
          const ts = now();
          pub.send(room, content('m', len, idx)).then((r) => {
            ackLat.push(now() - ts);
            if (!r.ok) { errors++; if (!firstErr) firstErr = r.code; }
            acked[idx] = 1;
            if (counts[idx] === n && onComplete) onComplete(idx);
          });
        }
        if (inFlight === 0) { clearTimeout(guard); finish(); }
      };
      onComplete = () => { inFlight--; completed++; tLast = now(); pump(); };
      pump();
    });
    onComplete = null;
    const elapsed = (tLast - t0) / 1000;
    phase(`end:${mode.name}`);
    const d = process.cpuUsage(cpu0);
    out[mode.name] = {
      window: mode.window, sent, completed, complete: completed === sent, errors, first_error: firstErr,
      deliveries: delivered, expected: sent * n, elapsed_s: Math.round(elapsed * 1000) / 1000,
      deliveries_per_s: Math.round(delivered / elapsed), messages_per_s: Math.round(completed / elapsed * 10) / 10,
      latency_ms: percentiles(lat, nLat), ack_ms: percentiles(ackLat, ackLat.length),
      frame_bytes: { min: frameMin === Infinity ? null : frameMin, max: frameMax },
      client_cpu_s: Math.round((d.user + d.system) / 1e4) / 100,
    };
    await sleep(300);
  }
  out.publisher_received = pubGot;
  for (const c of subs.clients) c.close();
  pub.close();
  return out;
}

// Each sender its own user and socket, sending to one room as fast as acks come back.
async function senders() {
  const n = cfg.senders;
  const room = roomId('senders');
  const tokens = seed ? seed.senders : [];
  const opened = await openMany(n, (i) => tokens[i], null, 50);
  if (opened.failed) throw new Error(`${opened.failed} senders failed: ${opened.firstError}`);
  // Warm-up: one send each.
  await Promise.all(opened.clients.map((c) => c.send(room, makeContent('w'))));
  const durMs = cfg.duration_s * 1000;
  const maxPer = cfg.max_per_sender || 100000;
  const ackLat = []; let acked = 0; let errors = 0; let firstErr = null; let lastAck = 0;
  phase('start');
  const t0 = now();
  await Promise.all(opened.clients.map((c) => new Promise((resolve) => {
    let inFlight = 0; let sent = 0;
    const pump = () => {
      while (inFlight < (cfg.window || 1) && sent < maxPer && now() - t0 < durMs) {
        inFlight++; sent++;
        const ts = now();
        c.send(room, makeContent('m')).then((r) => {
          lastAck = now(); ackLat.push(lastAck - ts); inFlight--;
          if (r.ok) acked++; else { errors++; if (!firstErr) firstErr = r.code; }
          pump();
        });
      }
      if (inFlight === 0) resolve();
    };
    pump();
  })));
  const elapsed = (lastAck - t0) / 1000;
  phase('end');
  for (const c of opened.clients) c.close();
  return {
    senders: opened.clients.length, window: cfg.window || 1, acked, errors, first_error: firstErr,
    elapsed_s: Math.round(elapsed * 1000) / 1000, client_cpu_s: clientCpuS(),
    acked_per_s: Math.round(acked / elapsed), ack_ms: percentiles(ackLat, ackLat.length),
  };
}

// Open `count` idle connections (subscriber index offset..offset+count-1), each authenticated and
// joined to its idle room, report ready, then hold them.
async function idle() {
  const size = seed ? seed.idle_room_size : (cfg.idle_room_size || 100);
  const tokens = seed ? seed.subs : [];
  const off = cfg.offset || 0;
  const t0 = now();
  const opened = await openMany(cfg.conns, (i) => tokens[off + i], (i) => roomId('idle', Math.floor((off + i) / size)),
    cfg.concurrency || 50);
  process.stdout.write(JSON.stringify({ ready: opened.clients.length, failed: opened.failed,
    first_error: opened.firstError, open_s: Math.round((now() - t0) / 10) / 100 }) + '\n');
  await new Promise((resolve) => {
    const t = setTimeout(resolve, (cfg.hold_s || 120) * 1000);
    process.stdin.on('end', resolve); process.stdin.on('close', resolve); process.stdin.resume();
    process.on('SIGTERM', resolve);
    t.unref();
  });
  for (const c of opened.clients) c.close();
  return { closed: opened.clients.length };
}

(async () => {
  let result;
  try {
    if (cfg.scenario === 'fanout' || cfg.scenario === 'rate') result = await fanout();
    else if (cfg.scenario === 'modes') result = await modes();
    else if (cfg.scenario === 'senders') result = await senders();
    else if (cfg.scenario === 'idle') result = await idle();
    else throw new Error(`unknown scenario ${cfg.scenario}`);
  } catch (e) {
    result = { error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  setTimeout(() => process.exit(result.error ? 1 : 0), 100);
})();
