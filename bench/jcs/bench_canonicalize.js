#!/usr/bin/env node
// bench_canonicalize.js -- canonicalize+SHA-256 throughput of the npm
// `canonicalize` package (RFC 8785, the most used JavaScript JCS), the
// reference bench_jcs.c is compared with.
//
//   node bench_canonicalize.js [-t SECONDS] [-w SECONDS] FILE...
//
// Per operation, from the file's bytes as a gateway would have them:
//
//   crypto.createHash('sha256')
//     .update(canonicalize(JSON.parse(text)))
//     .digest('hex')
//
// Parsing is part of the job (the C side parses from bytes too); decoding
// the bytes to a JS string is too (Buffer -> string, as a Node server
// reading a request body does).  Each file runs for SECONDS of wall time
// (default 2) after a warmup (default a quarter of SECONDS, at most 0.5 s)
// that lets V8 optimize.
//
// One line per file on stdout, the same form as bench_jcs:
//
//   node NAME bytes=N canon_bytes=M mbps=X ops=Y cpu_mbps=Z iters=I secs=S
//        cpu_secs=C sha256=HEX
//
// X and Y are per second of wall time, Z per second of the process's CPU
// time (process.cpuUsage(): every thread, so V8's background GC and
// compiler threads are counted as the cost they are).

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import canonicalize from './load-canonicalize.js';

function usage() {
  process.stderr.write(
    'usage: node bench_canonicalize.js [-t SECONDS] [-w SECONDS] FILE...\n');
  process.exit(2);
}

let secs = 2;
let warm = -1;
const files = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if ((a === '-t' || a === '-w') && i + 1 < argv.length) {
    const v = Number(argv[++i]);
    if (!(v >= 0) || v > 3600) usage();
    if (a === '-t') secs = v; else warm = v;
  } else if (a === '--') {
    files.push(...argv.slice(i + 1));
    break;
  } else if (a.startsWith('-')) {
    usage();
  } else {
    files.push(a);
  }
}
if (files.length === 0) usage();
if (warm < 0) warm = Math.min(secs / 4, 0.5);

const now = () => Number(process.hrtime.bigint()) / 1e9;

function op(bytes) {
  return crypto.createHash('sha256')
    .update(canonicalize(JSON.parse(bytes.toString('utf8'))))
    .digest('hex');
}

// Warm up, then run in batches of about a millisecond until secs pass.
function run(bytes) {
  let iters = 0;
  let hex;
  const t0 = now();
  let t;
  do {
    hex = op(bytes);
    iters++;
    t = now();
  } while (t - t0 < warm);

  const batch = Math.max(1, Math.floor(iters / (t - t0) / 1000));
  iters = 0;
  const cpu0 = process.cpuUsage();
  const start = now();
  let elapsed;
  do {
    for (let i = 0; i < batch; i++) hex = op(bytes);
    iters += batch;
    elapsed = now() - start;
  } while (elapsed < secs);
  const c = process.cpuUsage(cpu0);
  const cpu = (c.user + c.system) / 1e6;
  return { ops: iters / elapsed, iters, elapsed, cpu, hex };
}

let status = 0;
for (const file of files) {
  let bytes;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    process.stderr.write(`bench_canonicalize: ${file}: ${e.message}\n`);
    status = 1;
    continue;
  }
  let canon;
  try {
    canon = Buffer.from(canonicalize(JSON.parse(bytes.toString('utf8'))), 'utf8');
  } catch (e) {
    process.stderr.write(`bench_canonicalize: ${file}: ${e.message}\n`);
    status = 1;
    continue;
  }
  const r = run(bytes);
  const want = crypto.createHash('sha256').update(canon).digest('hex');
  if (r.hex !== want) {
    process.stderr.write(`bench_canonicalize: ${file}: unstable hash\n`);
    status = 1;
  }
  process.stdout.write(
    `node ${path.basename(file)} bytes=${bytes.length} ` +
    `canon_bytes=${canon.length} mbps=${(r.ops * bytes.length / 1e6).toFixed(1)} ` +
    `ops=${r.ops.toFixed(0)} ` +
    `cpu_mbps=${(r.cpu > 0 ? r.iters * bytes.length / r.cpu / 1e6 : 0).toFixed(1)} ` +
    `iters=${r.iters} secs=${r.elapsed.toFixed(3)} cpu_secs=${r.cpu.toFixed(3)} ` +
    `sha256=${r.hex}\n`);
}
process.exitCode = status;
