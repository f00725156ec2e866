// triage.mjs: the quickstart's AI app, an ITSM triage agent.  It reads a
// ServiceNow incident, asks a model (the official OpenAI Node SDK) to
// summarize, classify and propose an assignment, and writes the result
// back to the incident.  Everything goes through the foxgov gateway: the
// app's only changes are the base URL and the key it sends, a foxgov
// token.  It never holds the OpenAI key or the ServiceNow token.
//
//   node triage.mjs triage INC0010003     read, classify, write back; a
//                                         write held for an approver
//                                         (428) is saved, exit status 3
//   node triage.mjs resume INC0010003 --approval FILE
//                                         retry the held write with the
//                                         approver's FoxGov-Approval token
//   node triage.mjs deny                  ask an unpinned model (403)
//   node triage.mjs throttle              poll incidents until held (429)
//
// Environment: FOXGOV_GATEWAY (default http://127.0.0.1:8780),
// FOXGOV_TOKEN_FILE (the caller token), FOXGOV_DEMO_STATE (a directory
// for the held writes).  Every call of one ticket carries one W3C trace
// (traceparent) and the label ticket=<number>, so its evidence can be
// exported and its cost reported per ticket.
//
// Output: lines for a person; exit status 0 done, 3 held for approval,
// 1 a call failed, 2 usage.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';

const MODEL = 'gpt-4o-mini-2024-07-18';     // pinned in the bundle
const UNPINNED_MODEL = 'gpt-4o';            // a floating alias: denied

const gateway = (process.env.FOXGOV_GATEWAY ?? 'http://127.0.0.1:8780')
    .replace(/\/+$/, '');
const stateDir = process.env.FOXGOV_DEMO_STATE;

function usage(why) {
    if (why) console.error(`triage: ${why}`);
    console.error('usage: node triage.mjs triage|resume INC [--approval FILE]'
        + ' | deny | throttle');
    process.exit(2);
}

function readToken() {
    const file = process.env.FOXGOV_TOKEN_FILE;
    if (!file) usage('FOXGOV_TOKEN_FILE is not set');
    try {
        return readFileSync(file, 'utf8').trim();
    } catch (e) {
        usage(`${file}: ${e.message}`);
    }
}

const token = readToken();

const hex = (n) => randomBytes(n).toString('hex');

// One trace per ticket; each call is a new span of the app's.
function trace(traceId) {
    return `00-${traceId}-${hex(8)}-01`;
}

function say(step, text) {
    console.log(`  ${step.padEnd(9)} ${text}`);
}

function fail(what, status, body) {
    const e = body?.error ?? {};
    console.error(`triage: ${what}: HTTP ${status} ${e.code ?? ''} `
        + `${e.message ?? JSON.stringify(body)}`);
    process.exit(1);
}

// A ServiceNow Table API call through the gateway: the caller token as
// the bearer, which the gateway replaces with ServiceNow's own.
async function servicenow(method, path, { traceId, labels, body,
                                          approval } = {}) {
    const headers = {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        traceparent: trace(traceId ?? hex(16)),
    };
    if (labels) headers['foxgov-labels'] = labels;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (approval) headers['foxgov-approval'] = approval;
    const res = await fetch(`${gateway}/servicenow/api/now/table/${path}`,
        { method, headers, body });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { json = { raw: text }; }
    return { status: res.status, json, headers: res.headers };
}

function openai(traceId, labels) {
    return new OpenAI({
        baseURL: `${gateway}/v1`,
        apiKey: token,                  // the foxgov token, not OpenAI's
        maxRetries: 0,
        timeout: 20_000,
        defaultHeaders: {
            traceparent: trace(traceId),
            ...(labels ? { 'foxgov-labels': labels } : {}),
        },
    });
}

const TRIAGE_SCHEMA = {
    type: 'object',
    properties: {
        summary: { type: 'string' },
        category: { type: 'string',
            enum: ['inquiry', 'software', 'hardware', 'network',
                   'database'] },
        priority: { type: 'string', enum: ['1', '2', '3', '4', '5'] },
        assignment_group: { type: 'string' },
        work_note: { type: 'string' },
    },
    required: ['summary', 'category', 'priority', 'assignment_group',
               'work_note'],
    additionalProperties: false,
};

function heldFile(number) {
    if (!stateDir) usage('FOXGOV_DEMO_STATE is not set');
    if (!/^INC[0-9]{7}$/.test(number)) usage(`${number}: not an INC number`);
    mkdirSync(stateDir, { recursive: true });
    return join(stateDir, `${number}.held.json`);
}

async function triage(number) {
    const held = heldFile(number);
    const traceId = hex(16);
    const labels = `ticket=${number}, use_case=itsm-triage`;
    console.log(`ticket ${number}  trace ${traceId}`);

    // 1. read the incident (tool call servicenow.incident:read)
    const q = `incident?sysparm_query=number=${number}&sysparm_limit=1`;
    const got = await servicenow('GET', q, { traceId, labels });
    if (got.status !== 200) fail('read the incident', got.status, got.json);
    const inc = got.json.result?.[0];
    if (!inc) fail('read the incident', 404, { error: { message:
        `${number} not found` } });
    say('read', `${inc.number} "${inc.short_description}" (state ${inc.state},`
        + ` priority ${inc.priority}) ALLOW`);

    // 2. ask the model (model call openai, a pinned snapshot)
    const ai = openai(traceId, labels);
    const { data: completion, response } = await ai.chat.completions.create({
        model: MODEL,
        max_tokens: 400,
        temperature: 0,
        response_format: { type: 'json_schema', json_schema: {
            name: 'incident_triage', strict: true, schema: TRIAGE_SCHEMA } },
        messages: [
            { role: 'system', content: 'You triage IT incidents for the '
                + 'service desk. Answer with the incident_triage JSON.' },
            { role: 'user', content: `Incident ${inc.number}\n`
                + `Short description: ${inc.short_description}\n`
                + `Description: ${inc.description}` },
        ],
    }).withResponse();
    const t = JSON.parse(completion.choices[0].message.content);
    const u = completion.usage;
    say('model', `${completion.model}: ${t.category}, priority ${t.priority},`
        + ` ${t.assignment_group} (${u.prompt_tokens}+${u.completion_tokens}`
        + ` tokens) ALLOW, execution ${response.headers.get(
            'foxgov-execution-id')}`);

    // 3. write the triage back (tool call servicenow.incident:write)
    const body = JSON.stringify({
        category: t.category,
        priority: t.priority,
        assignment_group: t.assignment_group,
        state: '2',
        work_notes: `${t.summary}\n${t.work_note}`,
    });
    const path = `incident/${inc.sys_id}`;
    const w = await servicenow('PATCH', path, { traceId, labels, body });
    if (w.status === 428) {
        const approval = w.json.error?.approval;
        writeFileSync(held, JSON.stringify({ number, traceId, labels, path,
            body, approval }, null, 2) + '\n');
        writeFileSync(held.replace(/\.held\.json$/, '.approval-request.json'),
            JSON.stringify(approval, null, 2) + '\n');
        say('write', `held for an approver: 428 ${w.json.error.code}, `
            + `request ${approval.approval_request_id}, input sha256 `
            + `${approval.input_sha256.slice(0, 16)}...`);
        return 3;
    }
    if (w.status !== 200) fail('write back', w.status, w.json);
    say('write', `${inc.number} updated without approval (ALLOW)`);
    return 0;
}

async function resume(number, approvalFile) {
    const held = heldFile(number);
    if (!approvalFile) usage('resume needs --approval FILE');
    let h;
    try {
        h = JSON.parse(readFileSync(held, 'utf8'));
    } catch (e) {
        usage(`${held}: ${e.message} (run triage first)`);
    }
    const approval = readFileSync(approvalFile, 'utf8').trim();
    console.log(`ticket ${number}  trace ${h.traceId}`);

    // the same input, now with the approval bound to its hash
    const w = await servicenow('PATCH', h.path, { traceId: h.traceId,
        labels: h.labels, body: h.body, approval });
    if (w.status !== 200) fail('approved write back', w.status, w.json);
    const r = w.json.result;
    say('write', `approved retry: ${r.number} now category ${r.category}, `
        + `priority ${r.priority}, ${r.assignment_group}, state ${r.state}`
        + ` ALLOW, execution ${w.headers.get('foxgov-execution-id')}`);
    return 0;
}

async function deny() {
    const ai = openai(hex(16));
    try {
        await ai.chat.completions.create({ model: UNPINNED_MODEL,
            max_tokens: 50, messages: [{ role: 'user',
                content: 'Summarize the open incidents.' }] });
    } catch (e) {
        if (e instanceof OpenAI.APIError && e.status === 403) {
            say('deny', `${UNPINNED_MODEL}: 403 ${e.error?.code}: `
                + `${e.error?.message}`);
            return 0;
        }
        throw e;
    }
    console.error(`triage: ${UNPINNED_MODEL} was not refused`);
    return 1;
}

// A runaway agent polling the queue: the bundle's servicenow-read-rate
// holds it at 10 reads a minute.
async function throttle() {
    const traceId = hex(16);
    for (let i = 1; i <= 30; i++) {
        const r = await servicenow('GET',
            'incident?sysparm_query=state=1&sysparm_limit=5', { traceId });
        if (r.status === 429) {
            say('throttle', `read ${i}: 429 ${r.json.error?.code}, `
                + `Retry-After ${r.headers.get('retry-after')}s: `
                + `${r.json.error?.message}`);
            return 0;
        }
        if (r.status !== 200) fail(`poll ${i}`, r.status, r.json);
    }
    console.error('triage: 30 reads and never throttled');
    return 1;
}

const [cmd, arg, ...rest] = process.argv.slice(2);
let status;
try {
    if (cmd === 'triage' && arg) {
        status = await triage(arg);
    } else if (cmd === 'resume' && arg) {
        const i = rest.indexOf('--approval');
        status = await resume(arg, i >= 0 ? rest[i + 1] : undefined);
    } else if (cmd === 'deny') {
        status = await deny();
    } else if (cmd === 'throttle') {
        status = await throttle();
    } else {
        usage();
    }
} catch (e) {
    const body = e?.error ? { error: e.error } : null;
    if (e instanceof OpenAI.APIError) fail('model call', e.status, body);
    console.error(`triage: ${e?.message ?? e}`);
    status = 1;
}
process.exit(status);
