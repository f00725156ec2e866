#!/usr/bin/env node
// crosscheck.js -- check canonical-form vectors against an independent JCS
// implementation, the npm `canonicalize` package.
//
//   node crosscheck.js PATH...
//
// Each PATH is a directory or a file:
//
//   DIR holding X.json + X.canon pairs (vectors/jcs/valid): each X.json is
//       checked against X.canon;
//   DIR holding input/ and output/ (vectors/rfc8785): each input/X.json is
//       checked against output/X.json;
//   FILE X.json: checked against X.canon beside it.
//
// For each input: canonicalize(JSON.parse(bytes)) is encoded as UTF-8 and
// compared byte for byte with the expected file.  One line per input:
//
//   FILE<TAB>ok
//   FILE<TAB>MISMATCH<TAB>first difference at byte K: expected ... got ...
//   FILE<TAB>skip<TAB>why        (JSON.parse refused it, or canonicalize
//                                 threw, or there is no expected file)
//
// Inputs JSON.parse cannot read, or that canonicalize refuses (lone
// surrogates), are skipped: JavaScript cannot express them, so the vector
// is about something this implementation cannot check.  Note JSON.parse is
// laxer than RFC 8785 on duplicate keys (the last one wins); our
// canonicalizer refuses them, so such vectors belong in invalid/.
//
// Exit status: 0 when nothing mismatched, 1 when something did, 2 on usage
// error or when a PATH does not exist.

import fs from 'node:fs';
import path from 'node:path';

import canonicalize from './load-canonicalize.js';

const args = process.argv.slice(2);
if (args.length === 0) {
  process.stderr.write('usage: node crosscheck.js DIR|FILE.json...\n');
  process.exit(2);
}

// [input, expected] pairs for one PATH
function pairs(p) {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) {
    process.stderr.write(`crosscheck: ${p}: no such file or directory\n`);
    process.exit(2);
  }
  if (st.isFile()) {
    return [[p, p.replace(/\.json$/, '') + '.canon']];
  }
  const inDir = path.join(p, 'input');
  const outDir = path.join(p, 'output');
  if (fs.existsSync(inDir) && fs.existsSync(outDir)) {
    return fs.readdirSync(inDir).filter((f) => f.endsWith('.json')).sort()
      .map((f) => [path.join(inDir, f), path.join(outDir, f)]);
  }
  return fs.readdirSync(p).filter((f) => f.endsWith('.json')).sort()
    .map((f) => [path.join(p, f), path.join(p, f.slice(0, -5) + '.canon')]);
}

// a short, printable view of bytes around offset k
function around(buf, k) {
  const s = buf.subarray(Math.max(0, k - 12), k + 20);
  return JSON.stringify(s.toString('latin1'))
    .replace(/[\u0080-\u00ff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
}

let bad = 0;
let ok = 0;
let skipped = 0;
for (const p of args) {
  for (const [input, expected] of pairs(p)) {
    if (!fs.existsSync(expected)) {
      console.log(`${input}\tskip\tno ${path.basename(expected)}`);
      skipped++;
      continue;
    }
    let got;
    try {
      const value = JSON.parse(fs.readFileSync(input, 'utf8'));
      got = Buffer.from(canonicalize(value), 'utf8');
    } catch (e) {
      console.log(`${input}\tskip\t${e.message}`);
      skipped++;
      continue;
    }
    const want = fs.readFileSync(expected);
    if (got.equals(want)) {
      console.log(`${input}\tok`);
      ok++;
      continue;
    }
    let k = 0;
    while (k < got.length && k < want.length && got[k] === want[k]) k++;
    console.log(`${input}\tMISMATCH\tfirst difference at byte ${k} ` +
      `(expected ${want.length} bytes, got ${got.length}): ` +
      `expected ${around(want, k)} got ${around(got, k)}`);
    bad++;
  }
}

process.stderr.write(`crosscheck: ${ok} ok, ${bad} mismatched, ${skipped} skipped\n`);
process.exitCode = bad ? 1 : 0;
