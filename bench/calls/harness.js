// Client harness for the signaling-relay benchmark (bench/calls/run.py drives it).
//
//   node bench/calls/harness.js '<json config>'
//
// Config: {kind: "podium"|"floor"|"sio", url, seed (Podium: rooms and tokens from seed.py),
// sessions, peers, rounds, warmup_rounds, period_ms, candidates, sdp_bytes, drain_s,
// hard_deadline_s}.
//
// `sessions` x `peers` WebSocket clients; in each session every peer joins (`call.join`), then
// every round each pair (i < j) negotiates like a browser mesh: i sends rtc.offer (acked) to j;
// j answers (rtc.answer, acked) and trickles `candidates` rtc.ice frames + a null
// end-of-candidates; when i gets the answer it trickles its own. Each session starts each
// round at a random moment within `period_ms`, so sessions' bursts collide as they would.
// Every frame carries its send time (performance.now(), this process's clock) in
// negotiation_id; the receiver records relay latency = receive time - send time.
//
// Podium and the Tornado floor are driven with raw `ws` and the PROTOCOL §2 envelope;
// python-socketio with socket.io-client (websocket transport only). Prints PHASE start/end
// around the measured rounds and one JSON result line. Every loop is bounded in count and
// time, and the process exits by itself.
'use strict';
const fs = require('fs');
const { performance } = require('perf_hooks');
const WebSocket = require('ws');

const cfg = JSON.parse(process.argv[2]);
const seed = cfg.seed ? JSON.parse(fs.readFileSync(cfg.seed, 'utf8')) : null;
const now = () => performance.now();
const HARD_DEADLINE_S = cfg.hard_deadline_s || 300;

const hardTimer = setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: `harness hard deadline (${HARD_DEADLINE_S} s) reached` }) + '\n');
  process.exit(2);
}, HARD_DEADLINE_S * 1000);
hardTimer.unref();

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]);
}

// --- clients -------------------------------------------------------------------------------
class EnvelopeClient {  // Podium's envelope over raw ws (Podium and the Tornado floor)
  constructor(url) { this.url = url; this.nextId = 1; this.pending = new Map(); this.onSignal = null; }
  open() {
    return new Promise((resolve, reject) => {
      const ws = this.ws = new WebSocket(this.url, { perMessageDeflate: false });
      let hello = false;
      ws.on('message', (data) => {
        const msg = JSON.parse(data);
        const t = msg.type;
        if (t === 'rtc.offer' || t === 'rtc.answer' || t === 'rtc.ice') {
          if (this.onSignal) this.onSignal(msg);
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
        for (const p of this.pending.values()) p({ type: 'error', code: `closed ${code}` });
        this.pending.clear();
      });
    });
  }
  request(type, fields) {
    const id = `q${this.nextId++}`;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ type, id, ...fields }));
    });
  }
  send(type, fields) { this.ws.send(JSON.stringify({ type, ...fields })); }
  close() { try { this.ws.close(); } catch (e) { /* already gone */ } }
}

class SioClient {
  constructor(url) { this.url = url; this.onSignal = null; }
  open() {
    const { io } = require('socket.io-client');
    return new Promise((resolve, reject) => {
      const s = this.socket = io(this.url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 15000 });
      for (const t of ['rtc.offer', 'rtc.answer', 'rtc.ice']) {
        s.on(t, (d) => { if (this.onSignal) this.onSignal({ type: t, ...d }); });
      }
      s.once('connect', () => resolve(this));
      s.once('connect_error', (e) => reject(e));
    });
  }
  request(type, fields) {
    return new Promise((resolve) => this.socket.emit(type, fields, (resp) => {
      resolve(resp && resp.error ? { type: 'error', code: resp.error } : { type: 'ack', data: resp });
    }));
  }
  send(type, fields) { this.socket.emit(type, fields); }
  close() { try { this.socket.disconnect(); } catch (e) { /* already gone */ } }
}

function makeClient(session, peer) {
  if (cfg.kind === 'sio') return new SioClient(cfg.url);
  if (cfg.kind === 'podium') return new EnvelopeClient(`${cfg.url}?token=${encodeURIComponent(seed.rooms[session].tokens[peer])}`);
  return new EnvelopeClient(cfg.url);
}

// --- stats ---------------------------------------------------------------------------------
function pct(sorted, p) {
  if (!sorted.length) return null;
  return +sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))].toFixed(3);
}
function summary(values) {
  const s = Float64Array.from(values).sort();
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), p999: pct(s, 99.9),
    max: s.length ? +s[s.length - 1].toFixed(3) : null };
}

// --- the run -------------------------------------------------------------------------------
const PAD = 'a=x-pad:' + 'x'.repeat(Math.max(0, (cfg.sdp_bytes || 4000) - 200)) + '\r\n';
const SDP_HEAD = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n';
function sdp(tag) { return `${SDP_HEAD}a=x-bench:${tag}\r\n${PAD}`; }
function candidate(k) {
  return { candidate: `candidate:${k} 1 udp ${2130706431 - k} 127.0.0.1 ${40000 + k} typ host generation 0`,
    sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'benc' };
}

async function main() {
  const S = cfg.sessions, P = cfg.peers, K = cfg.candidates;
  const totalRounds = cfg.warmup_rounds + cfg.rounds;
  const perPair = 2 + 2 * (K + 1);
  const pairs = [];
  for (let i = 0; i < P; i++) for (let j = i + 1; j < P; j++) pairs.push([i, j]);
  const latencies = [];
  const ackMs = [];
  let received = 0; let measuredReceived = 0; let errors = 0; let firstError = null; let outOfOrder = 0;
  const expectedMeasured = S * cfg.rounds * pairs.length * perPair;
  const expectedAll = S * totalRounds * pairs.length * perPair;
  let doneResolve;
  const done = new Promise((r) => { doneResolve = r; });

  // Open every client (20 at a time), then join sessions.
  const sessions = [];
  const t0 = now();
  const jobs = [];
  for (let s = 0; s < S; s++) for (let p = 0; p < P; p++) jobs.push([s, p]);
  const clients = Array.from({ length: S }, () => new Array(P));
  let next = 0;
  async function opener() {
    while (next < jobs.length) {
      const [s, p] = jobs[next++];
      const c = makeClient(s, p);
      await withTimeout(c.open(), 20000, 'open');
      clients[s][p] = c;
    }
  }
  await Promise.all(Array.from({ length: 20 }, opener));
  const openS = (now() - t0) / 1000;
  for (let s = 0; s < S; s++) {
    const room = cfg.kind === 'podium' ? seed.rooms[s].id : `r${s}`;
    const started = await clients[s][0].request('call.start', { room });
    if (started.type !== 'ack') throw new Error(`call.start: ${JSON.stringify(started)}`);
    const sid = started.data.session.id;
    const peerIds = [];
    for (let p = 0; p < P; p++) {
      const j = await clients[s][p].request('call.join', { session: sid });
      if (j.type !== 'ack') throw new Error(`call.join: ${JSON.stringify(j)}`);
      peerIds.push(j.data.peer_id);
    }
    sessions.push({ sid, peerIds });
    // Per receiving peer, per sender: last sequence seen (order check within a pair's stream).
    const lastSeq = clients[s].map(() => new Map());
    for (let p = 0; p < P; p++) {
      const me = clients[s][p];
      me.onSignal = (ev) => {
        const tRecv = now();
        const [tag, tSent] = ev.negotiation_id.split('@');
        const [round, seq] = tag.split('.').map(Number);
        const prev = lastSeq[p].get(ev.from) || 0;
        if (seq !== prev + 1) outOfOrder++;  // each sender numbers its frames to each target 1, 2, ...
        lastSeq[p].set(ev.from, seq);
        received++;
        if (round >= cfg.warmup_rounds) { latencies.push(tRecv - parseFloat(tSent)); measuredReceived++; }
        if (ev.type === 'rtc.offer') {
          const t1 = now();
          me.request('rtc.answer', { session: sid, to: ev.from, sdp: sdp(`${s}.${p}`), negotiation_id: nid(me, ev.from, round, t1) })
            .then((r) => { if (r.type !== 'ack') { errors++; firstError = firstError || r; } });
          trickle(me, sid, ev.from, round);
        } else if (ev.type === 'rtc.answer') {
          trickle(me, sid, ev.from, round);
        }
        if (received >= expectedAll) doneResolve();
      };
    }
  }
  // negotiation_id = "<round>.<n>@<send time>": n counts this sender's frames to this target.
  function nid(c, to, round, t) {
    if (!c.sendSeq) c.sendSeq = new Map();
    const n = (c.sendSeq.get(to) || 0) + 1;
    c.sendSeq.set(to, n);
    return `${round}.${n}@${t.toFixed(3)}`;
  }
  function trickle(c, sid, to, round) {
    for (let k = 0; k <= K; k++) {
      c.send('rtc.ice', { session: sid, to, candidate: k < K ? candidate(k) : null, negotiation_id: nid(c, to, round, now()) });
    }
  }
  function startRound(s, round) {
    const { sid, peerIds } = sessions[s];
    for (const [i, j] of pairs) {
      const t = now();
      clients[s][i].request('rtc.offer', { session: sid, to: peerIds[j], sdp: sdp(`${s}.${i}`), negotiation_id: nid(clients[s][i], peerIds[j], round, t) })
        .then((r) => {
          if (round >= cfg.warmup_rounds) ackMs.push(now() - t);
          if (r.type !== 'ack') { errors++; firstError = firstError || r; }
        });
    }
  }

  // Warm-up rounds, then the measured ones.
  let phaseStart = null;
  for (let r = 0; r < totalRounds; r++) {
    if (r === cfg.warmup_rounds) {
      await new Promise((res) => setTimeout(res, 300));  // let the warm-up drain
      process.stdout.write('PHASE start\n');
      phaseStart = now();
    }
    for (let s = 0; s < S; s++) {
      const offset = Math.random() * cfg.period_ms;
      setTimeout(() => startRound(s, r), offset);
    }
    await new Promise((res) => setTimeout(res, cfg.period_ms));
  }
  const drained = await withTimeout(done.then(() => true), (cfg.drain_s || 15) * 1000, 'drain').catch(() => false);
  const phaseS = (now() - phaseStart) / 1000;
  process.stdout.write('PHASE end\n');
  const cpu = process.cpuUsage();
  const result = {
    kind: cfg.kind, sessions: S, peers: P, clients: S * P, rounds: cfg.rounds, candidates: K,
    sdp_bytes: cfg.sdp_bytes, open_s: +openS.toFixed(2), drained,
    frames_expected: expectedMeasured, frames_received: measuredReceived, out_of_order: outOfOrder,
    errors, first_error: firstError, relay_ms: summary(latencies), offer_ack_ms: summary(ackMs),
    phase_s: +phaseS.toFixed(2), frames_per_s: Math.round(measuredReceived / phaseS),
    client_cpu_s: +((cpu.user + cpu.system) / 1e6).toFixed(2),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
  for (const row of clients) for (const c of row) if (c) c.close();
  setTimeout(() => process.exit(0), 200);
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack || e) }) + '\n');
  process.exit(1);
});
