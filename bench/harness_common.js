// Pieces the Node benchmark harnesses share (bench/fanout/harness.js, bench/scaleout/harness.js).
// Node built-ins only, so each harness requires it by relative path whatever its own
// node_modules hold.
'use strict';
const crypto = require('crypto');
const { performance } = require('perf_hooks');

const now = () => performance.now();

// Exit with an error line if the harness is still running after cfg.hard_deadline_s (default
// 300 s), so a benchmark never hangs; returns this run's tag for client_msg_ids.
function startHarness(cfg) {
  const deadlineS = cfg.hard_deadline_s || 300;
  const timer = setTimeout(() => {
    process.stdout.write(JSON.stringify({ error: `harness hard deadline (${deadlineS} s) reached` }) + '\n');
    process.exit(2);
  }, deadlineS * 1000);
  timer.unref();
  return crypto.randomBytes(4).toString('hex');
}

// Content: "<m|w>|<send time>|" padded to ~100 bytes; the send time is `at` (default: ms since
// this process started).
const CONTENT_BYTES = 100;
const PAD = 'x'.repeat(CONTENT_BYTES);
function makeContent(tag, at = now()) {
  const head = `${tag}|${at.toFixed(3)}|`;
  return head + PAD.slice(head.length);
}
function contentTime(content) {
  return parseFloat(content.slice(2));
}

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]);
}

function percentiles(arr, n) {
  if (n === 0) return { p50: null, p90: null, p99: null, max: null };
  const a = Float64Array.from(arr.subarray ? arr.subarray(0, n) : arr.slice(0, n)).sort();
  const q = (p) => a[Math.min(n - 1, Math.floor(p * n))];
  const r = (x) => Math.round(x * 100) / 100;
  return { p50: r(q(0.5)), p90: r(q(0.9)), p99: r(q(0.99)), max: r(a[n - 1]) };
}

module.exports = { now, startHarness, makeContent, contentTime, withTimeout, percentiles };
