// calls.mjs: the official OpenAI and Anthropic Node SDKs, unchanged but
// for base URL and key, calling through a foxgov gateway.  Used by
// t/sdk-node.t; can be run by hand against any gateway:
//
//   node t/sdk/calls.mjs http://127.0.0.1:8080 <caller token>
//   FOXGOV_BASE=... FOXGOV_TOKEN=... node t/sdk/calls.mjs
//
// The caller's token is the SDKs' API key (Authorization: Bearer for
// OpenAI, x-api-key for Anthropic, api-key for Azure).  One JSON line per
// call on stdout: {name, ok, status, prompt, text, usage, stream,
// execution_id, error?}; the execution id is the FoxGov-Execution-Id
// response header, read through the SDKs' raw response access.

import OpenAI, { AzureOpenAI } from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const base = (process.argv[2] ?? process.env.FOXGOV_BASE ?? '')
    .replace(/\/+$/, '');
const token = process.argv[3] ?? process.env.FOXGOV_TOKEN;
if (!base || !token) {
    console.error('usage: node calls.mjs BASE_URL TOKEN '
        + '(or FOXGOV_BASE, FOXGOV_TOKEN)');
    process.exit(2);
}

const common = { timeout: 10_000, maxRetries: 0 };

const openai = new OpenAI({ ...common, baseURL: `${base}/v1`,
                            apiKey: token });
const azure = new AzureOpenAI({ ...common, endpoint: base,
    deployment: 'my-deployment', apiVersion: '2024-10-21', apiKey: token });
const anthropic = new Anthropic({ ...common, baseURL: `${base}/anthropic`,
                                  apiKey: token });

const CHAT_PROMPT = 'Please summarise the outage report for the Berlin '
    + 'office mail servers today';
const ANT_PROMPT = 'Write a short status note about the VPN login '
    + 'failures after the password change';
const RESP_PROMPT = 'Explain the change window policy for the '
    + 'network team in two lines';
const AZ_PROMPT = 'Draft a reply to the customer about the delayed '
    + 'shipment of order 4711';

// What the gateway says about the call, from the raw Response headers.
const gw = (response) => ({
    execution_id: response?.headers?.get?.('foxgov-execution-id') ?? null,
    decision_hash: response?.headers?.get?.('foxgov-decision-hash') ?? null,
});

function emit(o) {
    process.stdout.write(JSON.stringify(o) + '\n');
}

function describe(err) {
    return {
        class: err?.constructor?.name,
        message: String(err?.message ?? err),
        status: err?.status,
        code: err?.code,
        type: err?.type,
        error: err?.error,
        cause: err?.cause ? String(err.cause?.message ?? err.cause) : undefined,
    };
}

// Run one call: fn returns {status, text, usage, execution_id, ...}.
async function call(name, prompt, stream, fn) {
    const t0 = Date.now();
    try {
        const r = await fn();
        emit({ name, ok: true, stream, prompt, ms: Date.now() - t0,
               ...r });
    } catch (err) {
        emit({ name, ok: false, stream, prompt, ms: Date.now() - t0,
               status: err?.status ?? null,
               ...gw(err),
               error: describe(err) });
    }
}

const userMsg = (content) => [{ role: 'user', content }];

// ---------------------------------------------------------------- OpenAI

await call('openai.chat', CHAT_PROMPT, false, async () => {
    const { data, response } = await openai.chat.completions.create({
        model: 'gpt-4o', messages: userMsg(CHAT_PROMPT),
    }).withResponse();
    return { status: response.status, text: data.choices[0].message.content,
             usage: data.usage, model: data.model,
             ...gw(response) };
});

await call('openai.chat.stream', CHAT_PROMPT, true, async () => {
    const { data: stream, response } = await openai.chat.completions.create({
        model: 'gpt-4o', messages: userMsg(CHAT_PROMPT), stream: true,
        stream_options: { include_usage: true },
    }).withResponse();
    const deltas = [];
    let usage = null;
    for await (const chunk of stream) {
        const d = chunk.choices?.[0]?.delta?.content;
        if (d) deltas.push(d);
        if (chunk.usage) usage = chunk.usage;
    }
    return { status: response.status, text: deltas.join(''), deltas,
             usage, ...gw(response) };
});

if (typeof openai.responses?.create === 'function') {
    await call('openai.responses', RESP_PROMPT, false, async () => {
        const { data, response } = await openai.responses.create({
            model: 'gpt-4o', input: RESP_PROMPT,
        }).withResponse();
        return { status: response.status, text: data.output_text,
                 usage: data.usage, ...gw(response) };
    });

    await call('openai.responses.stream', RESP_PROMPT, true, async () => {
        const { data: stream, response } = await openai.responses.create({
            model: 'gpt-4o', input: RESP_PROMPT, stream: true,
        }).withResponse();
        const deltas = [];
        let usage = null;
        for await (const ev of stream) {
            if (ev.type === 'response.output_text.delta') deltas.push(ev.delta);
            if (ev.type === 'response.completed') usage = ev.response.usage;
        }
        return { status: response.status, text: deltas.join(''), deltas,
                 usage, ...gw(response) };
    });
}

await call('openai.embeddings', 'the quick brown fox', false, async () => {
    const { data, response } = await openai.embeddings.create({
        model: 'text-embedding-3-small', input: 'the quick brown fox',
    }).withResponse();
    const v = data.data[0].embedding;
    return { status: response.status,
             text: `${data.data.length} x ${v.length}`,
             usage: data.usage, dims: v.length,
             ...gw(response) };
});

await call('azure.chat', AZ_PROMPT, false, async () => {
    const { data, response } = await azure.chat.completions.create({
        model: 'gpt-4o', messages: userMsg(AZ_PROMPT),
    }).withResponse();
    return { status: response.status, text: data.choices[0].message.content,
             usage: data.usage, model: data.model,
             ...gw(response) };
});

await call('azure.chat.stream', AZ_PROMPT, true, async () => {
    const { data: stream, response } = await azure.chat.completions.create({
        model: 'gpt-4o', messages: userMsg(AZ_PROMPT), stream: true,
    }).withResponse();
    const deltas = [];
    for await (const chunk of stream) {
        const d = chunk.choices?.[0]?.delta?.content;
        if (d) deltas.push(d);
    }
    return { status: response.status, text: deltas.join(''), deltas,
             usage: null, ...gw(response) };
});

// ------------------------------------------------------------- Anthropic

await call('anthropic.messages', ANT_PROMPT, false, async () => {
    const { data, response } = await anthropic.messages.create({
        model: 'claude-3-5-sonnet-20241022', max_tokens: 256,
        messages: userMsg(ANT_PROMPT),
    }).withResponse();
    return { status: response.status,
             text: data.content.map((b) => b.text ?? '').join(''),
             usage: data.usage, ...gw(response) };
});

// the helper: messages.stream() -> MessageStream
await call('anthropic.messages.stream', ANT_PROMPT, true, async () => {
    const stream = anthropic.messages.stream({
        model: 'claude-3-5-sonnet-20241022', max_tokens: 256,
        messages: userMsg(ANT_PROMPT),
    });
    const deltas = [];
    stream.on('text', (t) => deltas.push(t));
    const { response } = await stream.withResponse();
    const msg = await stream.finalMessage();
    return { status: response.status, text: deltas.join(''), deltas,
             final_text: msg.content.map((b) => b.text ?? '').join(''),
             usage: msg.usage, ...gw(response) };
});

// the raw one: messages.create({stream: true}) -> Stream of events
await call('anthropic.messages.create-stream', ANT_PROMPT, true, async () => {
    const { data: stream, response } = await anthropic.messages.create({
        model: 'claude-3-5-sonnet-20241022', max_tokens: 256,
        messages: userMsg(ANT_PROMPT), stream: true,
    }).withResponse();
    const deltas = [];
    const usage = {};
    for await (const ev of stream) {
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta')
            deltas.push(ev.delta.text);
        if (ev.type === 'message_start')
            usage.input_tokens = ev.message.usage.input_tokens;
        if (ev.type === 'message_delta')
            usage.output_tokens = ev.usage.output_tokens;
    }
    return { status: response.status, text: deltas.join(''), deltas,
             usage, ...gw(response) };
});

// ---------------------------------------------------------------- refusal

// The gateway's 403 is OpenAI-shaped ({error: {message, type, code, ...}}),
// so the SDK throws PermissionDeniedError (an APIError) with err.status 403,
// err.error = the inner error object and err.code = err.error.code.
await call('openai.refusal', CHAT_PROMPT, false, async () => {
    try {
        await openai.chat.completions.create({
            model: 'gpt-3.5-turbo', messages: userMsg(CHAT_PROMPT),
        }).withResponse();
    } catch (err) {
        if (!(err instanceof OpenAI.APIError)) throw err;
        return { status: err.status, text: err.message, usage: null,
                 error_class: err.constructor.name,
                 is_api_error: true,
                 is_permission_denied:
                     err instanceof OpenAI.PermissionDeniedError,
                 code: err.code ?? null, error_code: err.error?.code ?? null,
                 error: err.error,
                 request_id: err.requestID ?? null,
                 ...gw(err) };
    }
    throw new Error('gpt-3.5-turbo was not refused');
});

// The same refusal through the Anthropic SDK (a model the policy does not
// allow): it throws its own PermissionDeniedError; err.error is the whole
// error body the gateway sent.
await call('anthropic.refusal', ANT_PROMPT, false, async () => {
    try {
        await anthropic.messages.create({
            model: 'claude-3-opus-20240229', max_tokens: 256,
            messages: userMsg(ANT_PROMPT),
        }).withResponse();
    } catch (err) {
        if (!(err instanceof Anthropic.APIError)) throw err;
        return { status: err.status, text: err.message, usage: null,
                 error_class: err.constructor.name,
                 is_permission_denied:
                     err instanceof Anthropic.PermissionDeniedError,
                 error: err.error, ...gw(err) };
    }
    throw new Error('claude-3-opus-20240229 was not refused');
});
