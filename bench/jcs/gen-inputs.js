#!/usr/bin/env node
// gen-inputs.js -- write the JCS bench inputs into a directory.
//
//   node gen-inputs.js DIR
//
// Writes, deterministically (seeded PRNG, no dependencies; the same bytes on
// every run and every machine):
//
//   chat-1k.json       OpenAI chat-completions request bodies, pretty-printed
//   chat-16k.json      as an SDK would send them, of about 1 KiB, 16 KiB and
//   chat-256k.json     256 KiB
//   numbers-256k.json  an OpenAI embeddings response of about 256 KiB: mostly
//                      8-10 significant-digit floats, some full 17-digit
//                      doubles, a few exponent forms and integers
//
// The chat bodies carry what makes canonicalization work: keys in SDK
// (unsorted) order, system/user/assistant/tool messages, tool calls whose
// arguments are JSON held in strings (escaped quotes), escaped newlines,
// non-ASCII text (é, —, emoji, CJK), a tools array with JSON-schema
// parameters, response_format, metadata, and a few numbers.

import fs from 'node:fs';
import path from 'node:path';

// ------------------------------------------------------------------ PRNG

// mulberry32: small, fast, and the same in every JS engine.
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
    // standard normal (Box-Muller)
    gauss: () => {
      let u = 0;
      while (u === 0) u = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
    },
  };
}

// ------------------------------------------------------------------ text

const WORDS = (
  'the a an of to and in for on with by from as at that this these those is are was ' +
  'be been can could should would will may might must not no yes it its we you they ' +
  'our your their customer account invoice order shipment refund policy request ' +
  'response model token prompt context window latency budget gateway service ' +
  'deployment cluster region database query index cache record ledger audit ' +
  'report summary analysis quarter revenue growth forecast risk compliance ' +
  'contract clause liability term renewal notice payment schedule vendor ' +
  'support ticket priority escalation incident outage root cause mitigation ' +
  'please explain describe compare list summarize translate draft review check ' +
  'update confirm cancel schedule retry verify estimate calculate recommend ' +
  'quickly carefully briefly clearly exactly approximately currently recently ' +
  'important relevant different similar previous following additional final ' +
  'first second third next last every each several many few more less most ' +
  'because although however therefore meanwhile otherwise instead also only ' +
  'user assistant system tool function argument parameter value result error ' +
  'document section paragraph sentence table column row field schema format ' +
  'weather forecast temperature humidity wind city country street address ' +
  'flight hotel booking reservation passenger itinerary departure arrival'
).split(' ');

// Words and fragments outside ASCII, as real traffic has them: accented
// Latin, typographic punctuation, emoji (astral, so surrogate pairs in
// UTF-16), CJK, Cyrillic, Greek.
const NON_ASCII = [
  'café', 'naïve', 'résumé', 'déjà vu', 'façade', 'Zürich', 'São Paulo',
  'München', 'señor', 'coöperate', 'Ångström', '—', '–', '…', '“quoted”',
  '‘single’', '€12.50', '£40', '¥3,000', '±2%', '°C', '→', '✓', '🚀', '😀',
  '👍🏽', '🇫🇷', '📦', '日本語のテキスト', '東京都', '中文内容', '你好，世界',
  '한국어', 'Привет', 'данные', 'Ελληνικά', 'العربية',
];

function sentence(r) {
  const n = r.int(6, 18);
  const w = [];
  for (let i = 0; i < n; i++) {
    w.push(r.chance(0.06) ? r.pick(NON_ASCII) : r.pick(WORDS));
  }
  let s = w.join(' ');
  s = s[0].toUpperCase() + s.slice(1);
  if (r.chance(0.08)) {
    // a quoted phrase: becomes \" in JSON
    const q = r.pick(WORDS) + ' ' + r.pick(WORDS);
    s += ` "${q}"`;
  }
  return s + r.pick(['.', '.', '.', '?', '!', ':']);
}

function paragraph(r, sentences) {
  const s = [];
  for (let i = 0; i < sentences; i++) s.push(sentence(r));
  return s.join(' ');
}

// Text of roughly `bytes` UTF-8 bytes: paragraphs separated by blank lines
// (\n\n in JSON), sometimes a list or a code block (tabs, quotes,
// backslashes).
function text(r, bytes) {
  const parts = [];
  let n = 0;
  while (n < bytes) {
    let p;
    const k = r.next();
    if (k < 0.12) {
      p = [1, 2, 3, 4].slice(0, r.int(2, 4))
        .map((i) => `${i}. ${sentence(r)}`).join('\n');
    } else if (k < 0.18) {
      p = '```python\ndef handler(event):\n\tpath = "C:\\\\data\\\\' +
        r.pick(WORDS) + '.json"\n\treturn {"status": "ok", "n": ' +
        r.int(1, 999) + '}\n```';
    } else {
      p = paragraph(r, r.int(2, 5));
    }
    parts.push(p);
    n += Buffer.byteLength(p) + 2;
  }
  let t = parts.join('\n\n');
  // trim to about the size asked for, on a character boundary
  while (Buffer.byteLength(t) > bytes + 16 && t.length > 1) {
    t = t.slice(0, Math.max(1, t.length - Math.ceil((Buffer.byteLength(t) - bytes) / 2)));
  }
  // end on a word boundary (never on a lone high surrogate)
  const sp = t.lastIndexOf(' ');
  if (sp > 0 && t.length - sp < 24 && Buffer.byteLength(t) > bytes) {
    t = t.slice(0, sp) + '.';
  }
  const last = t.charCodeAt(t.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) t = t.slice(0, -1);
  return t;
}

function hexid(r, n) {
  const c = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let s = '';
  for (let i = 0; i < n; i++) s += c[Math.floor(r.next() * c.length)];
  return s;
}

// ----------------------------------------------------------------- tools

const TOOL_NAMES = [
  'get_weather', 'search_documents', 'create_ticket', 'lookup_order',
  'book_flight', 'send_email', 'query_database', 'convert_currency',
  'get_stock_quote', 'schedule_meeting', 'translate_text', 'summarize_url',
];

function tool(r, name) {
  const props = {};
  const required = [];
  const nprops = r.int(3, 7);
  for (let i = 0; i < nprops; i++) {
    const key = r.pick(['city', 'query', 'order_id', 'date', 'limit',
      'currency', 'unit', 'language', 'priority', 'email', 'tags',
      'include_archived', 'max_results', 'timezone', 'filters']) +
      (i > 4 ? `_${i}` : '');
    if (props[key]) continue;
    const kind = r.int(0, 5);
    let p;
    if (kind === 0) {
      p = { type: 'string', description: sentence(r) };
    } else if (kind === 1) {
      p = { type: 'string', enum: ['celsius', 'fahrenheit', 'kelvin'].slice(0, r.int(2, 3)),
        description: sentence(r) };
    } else if (kind === 2) {
      p = { type: 'integer', minimum: 1, maximum: r.pick([10, 50, 100, 1000]),
        default: r.pick([5, 10, 20]), description: sentence(r) };
    } else if (kind === 3) {
      p = { type: 'number', minimum: 0, maximum: 1, default: 0.5,
        description: sentence(r) };
    } else if (kind === 4) {
      p = { type: 'array', items: { type: 'string', maxLength: 64 },
        maxItems: 16, description: sentence(r) };
    } else {
      p = {
        type: 'object',
        properties: {
          from: { type: 'string', format: 'date-time' },
          to: { type: 'string', format: 'date-time' },
          status: { type: 'string', enum: ['open', 'pending', 'closed'] },
        },
        additionalProperties: false,
        description: sentence(r),
      };
    }
    props[key] = p;
    if (r.chance(0.5)) required.push(key);
  }
  return {
    type: 'function',
    function: {
      name,
      description: paragraph(r, r.int(1, 3)),
      parameters: {
        type: 'object',
        properties: props,
        required,
        additionalProperties: false,
      },
      strict: r.chance(0.5),
    },
  };
}

// -------------------------------------------------------------- messages

function toolCall(r, names) {
  const name = r.pick(names);
  const args = {
    query: sentence(r),
    limit: r.int(1, 50),
    city: r.pick(['Paris', 'Zürich', '東京', 'São Paulo', 'New York']),
    include_archived: r.chance(0.5),
  };
  return {
    id: 'call_' + hexid(r, 24),
    type: 'function',
    function: { name, arguments: JSON.stringify(args) },
  };
}

function toolResult(r, bytes) {
  const items = [];
  let n = 0;
  while (n < bytes) {
    const it = {
      id: r.int(1000, 999999),
      title: sentence(r),
      score: Math.round(r.next() * 1e6) / 1e6,
      snippet: paragraph(r, r.int(1, 3)),
      updated_at: `2024-${String(r.int(1, 12)).padStart(2, '0')}-` +
        `${String(r.int(1, 28)).padStart(2, '0')}T12:${String(r.int(0, 59)).padStart(2, '0')}:00Z`,
    };
    items.push(it);
    n += JSON.stringify(it).length;
  }
  return JSON.stringify({ status: 'ok', count: items.length, results: items });
}

// One exchange: user asks, assistant maybe calls tools, tool answers,
// assistant replies.  Sizes scale with `scale` (bytes of text per turn).
function exchange(r, names, scale) {
  const out = [];
  out.push({ role: 'user', content: text(r, r.int(scale / 2, scale)) });
  if (names.length > 0 && r.chance(0.6)) {
    const calls = [];
    const k = r.int(1, 2);
    for (let i = 0; i < k; i++) calls.push(toolCall(r, names));
    out.push({ role: 'assistant', content: null, tool_calls: calls });
    for (const c of calls) {
      out.push({ role: 'tool', tool_call_id: c.id,
        content: toolResult(r, r.int(scale / 2, scale * 2)) });
    }
  }
  out.push({ role: 'assistant', content: text(r, r.int(scale / 2, scale * 2)) });
  return out;
}

const pretty = (v) => JSON.stringify(v, null, 2) + '\n';

function chat(seed, target) {
  const r = prng(seed);
  const ntools = target <= 2048 ? 0 : target <= 32768 ? 3 : 8;
  const names = TOOL_NAMES.slice(0, ntools);
  const scale = target <= 2048 ? 120 : target <= 32768 ? 900 : 3000;

  // the key order an SDK produces, not sorted
  const body = {
    model: 'gpt-4o-2024-08-06',
    messages: [
      { role: 'system', content: target <= 2048
        ? 'You are a helpful assistant for Acme Corp — answer briefly.'
        : 'You are a helpful assistant for Acme Corp.\n\n' + text(r, scale) },
    ],
  };
  if (ntools > 0) {
    body.tools = names.map((n) => tool(r, n));
    body.tool_choice = 'auto';
    body.parallel_tool_calls = true;
  }
  body.temperature = 0.7;
  body.top_p = 1;
  body.max_tokens = target <= 2048 ? 256 : 4096;
  body.stream = false;
  body.response_format = target <= 2048 ? { type: 'text' } : {
    type: 'json_schema',
    json_schema: {
      name: 'answer',
      strict: true,
      schema: {
        type: 'object',
        properties: {
          answer: { type: 'string' },
          confidence: { type: 'number', minimum: 0, maximum: 1 },
          citations: { type: 'array', items: { type: 'integer' } },
        },
        required: ['answer', 'confidence', 'citations'],
        additionalProperties: false,
      },
    },
  };
  body.user = 'user-' + hexid(r, 12);
  body.metadata = { tenant: 'acme-eu', session_id: hexid(r, 16), trace: 'é—🚀' };

  const size = () => Buffer.byteLength(pretty(body));

  // conversation turns while they fit
  for (;;) {
    const ex = exchange(r, names, scale);
    body.messages.push(...ex);
    if (size() > target) {
      body.messages.splice(body.messages.length - ex.length, ex.length);
      break;
    }
  }
  // a last user message that brings the body to about the target
  const last = { role: 'user', content: '' };
  body.messages.push(last);
  const room = target - size();
  if (room > 0) {
    // escapes grow the JSON form a little beyond the text's own bytes
    last.content = text(r, Math.floor(room * 0.9));
    while (size() > target && last.content.length > 1) {
      last.content = last.content.slice(0, -1);
    }
  }
  if (last.content === '') last.content = 'Thanks!';
  return pretty(body);
}

// --------------------------------------------------------------- numbers

// Numbers are emitted as raw text (so 17-digit forms and exponent forms stay
// as written), hence a small pretty-printer of our own for this document.
class Raw {
  constructor(t) { this.t = t; }
}

function ser(v, ind) {
  const pad = '  '.repeat(ind + 1), end = '  '.repeat(ind);
  if (v instanceof Raw) return v.t;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return '[\n' + v.map((x) => pad + ser(x, ind + 1)).join(',\n') + '\n' + end + ']';
  }
  if (v !== null && typeof v === 'object') {
    const k = Object.keys(v);
    if (k.length === 0) return '{}';
    return '{\n' + k.map((x) => pad + JSON.stringify(x) + ': ' + ser(v[x], ind + 1))
      .join(',\n') + '\n' + end + '}';
  }
  return JSON.stringify(v);
}

function float(r) {
  const x = r.gauss() * 0.035;
  const k = r.next();
  if (k < 0.80) {
    // the common case: 8-10 significant digits, as the API sends them
    return new Raw(String(Number(x.toPrecision(r.int(8, 10)))));
  }
  if (k < 0.93) {
    // a full double, 17 significant digits (not the shortest form)
    return new Raw(x.toPrecision(17));
  }
  if (k < 0.97) {
    // a tiny value in exponent form, as Python writes them
    const m = (r.next() * 9 + 1).toFixed(r.int(4, 8));
    return new Raw(`${r.chance(0.5) ? '-' : ''}${m}e-0${r.int(5, 7)}`);
  }
  // an integer
  return new Raw(String(r.pick([0, 0, 1, -1, r.int(-500, 500)])));
}

function numbers(seed, target) {
  const r = prng(seed);
  const dims = 512;
  const doc = { object: 'list', data: [], model: 'text-embedding-3-small',
    usage: { prompt_tokens: 0, total_tokens: 0 } };
  let i = 0;
  for (;;) {
    const emb = [];
    for (let d = 0; d < dims; d++) emb.push(float(r));
    doc.data.push({ object: 'embedding', index: i, embedding: emb });
    const tokens = r.int(200, 8000);
    doc.usage.prompt_tokens += tokens;
    doc.usage.total_tokens += tokens;
    i++;
    const s = ser(doc, 0) + '\n';
    if (Buffer.byteLength(s) >= target) {
      return s;
    }
  }
}

// ------------------------------------------------------------------ main

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node gen-inputs.js DIR\n');
  process.exit(2);
}
fs.mkdirSync(dir, { recursive: true });

const files = [
  ['chat-1k.json', () => chat(0x1001, 1024)],
  ['chat-16k.json', () => chat(0x1016, 16 * 1024)],
  ['chat-256k.json', () => chat(0x1256, 256 * 1024)],
  ['numbers-256k.json', () => numbers(0x2256, 256 * 1024)],
];

for (const [name, make] of files) {
  const text = make();
  JSON.parse(text); // it must be JSON
  fs.writeFileSync(path.join(dir, name), text);
}
