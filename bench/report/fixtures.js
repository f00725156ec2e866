// bench/report/fixtures.js -- the bytes bench/report sends and answers
// (bench code, not product code), written deterministically into DIR:
//
//   chat-1k.json         bench/gateway/request.json as is (1024 bytes)
//   chat-1k-stream.json  the same call with "stream": true, 1024 bytes
//   chat-16k.json        the same call with a longer incident context in
//                        the user message, 16384 bytes
//   chat-16k-stream.json the same with "stream": true, 16384 bytes
//   stream.sse           the upstream's streamed answer: the content of
//                        bench/gateway/response.json as chat.completion.chunk
//                        events of about 24 characters, a finish_reason
//                        chunk, a usage chunk and data: [DONE]
//
// Usage: node fixtures.js DIR
'use strict';
const fs = require('fs');
const path = require('path');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node fixtures.js DIR');
  process.exit(2);
}
const gw = path.join(__dirname, '..', 'gateway');
const base = fs.readFileSync(path.join(gw, 'request.json'), 'utf8');
const response = JSON.parse(fs.readFileSync(path.join(gw, 'response.json'), 'utf8'));

// The request bodies keep bench/gateway's member order and spacing
// (json.dumps style), so chat-1k.json is request.json byte for byte; a
// body is padded to its size by the user message's trailing context.
const filler = ' Timeline: the on-call saw 502s on checkout, retries ' +
  'masked part of them, the error budget burned at 6x, and support ' +
  'opened tickets from EU customers. Dashboards: api-5xx, lb-resets, ' +
  'db-latency, pool-saturation. Notes from the bridge call follow.';

function body(size, stream) {
  const req = JSON.parse(base);
  if (stream) req.stream = true;
  const render = (r) => JSON.stringify(r, null, 0)
    .replace(/","/g, '", "').replace(/":/g, '": ')
    .replace(/,"/g, ', "').replace(/\[\{/g, '[{').replace(/\},\{/g, '}, {');
  const user = req.messages[1];
  const text = user.content;
  // trim the context so that the padding lands exactly on size
  user.content = text;
  let s = render(req);
  if (s.length > size) {
    user.content = text.slice(0, text.length - (s.length - size));
    s = render(req);
  } else {
    let pad = '';
    while (render(req).length < size) {
      pad += filler;
      user.content = text + pad;
    }
    s = render(req);
    user.content = (text + pad).slice(0, text.length + pad.length - (s.length - size));
    s = render(req);
  }
  if (Buffer.byteLength(s) !== size) throw new Error(`body ${size}: got ${s.length}`);
  return s;
}

const out = {
  'chat-1k.json': body(1024, false),
  'chat-1k-stream.json': body(1024, true),
  'chat-16k.json': body(16384, false),
  'chat-16k-stream.json': body(16384, true),
};
if (out['chat-1k.json'] !== base) throw new Error('chat-1k.json differs from request.json');

// the streamed answer
const content = response.choices[0].message.content;
const chunk = (delta, finish, usage) => JSON.stringify({
  id: response.id, object: 'chat.completion.chunk', created: response.created,
  model: response.model, system_fingerprint: response.system_fingerprint,
  choices: usage ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  ...(usage ? { usage } : {}),
});
const events = [chunk({ role: 'assistant', content: '' }, null)];
for (let i = 0; i < content.length; i += 24) {
  events.push(chunk({ content: content.slice(i, i + 24) }, null));
}
events.push(chunk({}, 'stop'));
events.push(chunk(null, null, response.usage));
out['stream.sse'] = events.map((e) => `data: ${e}\n\n`).join('') + 'data: [DONE]\n\n';

fs.mkdirSync(dir, { recursive: true });
for (const [name, bytes] of Object.entries(out)) {
  fs.writeFileSync(path.join(dir, name), bytes);
}
