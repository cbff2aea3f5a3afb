import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { details, exchangeParams, startWorld, type World } from '../helpers/world.ts';

// The served OpenAPI document lists every admin route, and real answers match what it says.
type Doc = { openapi: string; paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>> };

let w: World;
let doc: Doc;
let ajv: Ajv2020;
let reviewer: string;
const checked = new Set<string>();

beforeAll(async () => {
  w = await startWorld({ policy: { file: path.resolve('test/fixtures/policy/review.yaml') } });
  reviewer = ((await (await w.t.admin('POST', '/admin/api/admins', { name: 'rita', role: 'reviewer', user: { issuer: 'https://idp.test', sub: 'rita' } })).json()) as { token: string }).token;
  const res = await fetch(`${w.t.url}/admin/api/openapi.json`);
  expect(res.status).toBe(200);
  doc = await res.json() as Doc;
  ajv = new Ajv2020({ strict: false, allErrors: true, formats: { 'date-time': (s: string) => /^\d{4}-\d\d-\d\dT/.test(s) && !Number.isNaN(Date.parse(s)) } });
  ajv.addSchema({ ...doc, $id: 'openapi' } as object);
});
afterAll(async () => { await w?.t.stop(); });

const pointer = (...parts: string[]) => `openapi#/${parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;

/** The answer's status is documented for this operation, and its JSON body matches the documented schema. */
async function conforms(res: Response, method: string, template: string, contentType = 'application/json'): Promise<unknown> {
  const status = String(res.status);
  const operation = doc.paths[template]?.[method.toLowerCase()];
  expect(operation, `${method} ${template} is documented`).toBeDefined();
  expect(Object.keys(operation!.responses), `${method} ${template} documents ${status}`).toContain(status);
  checked.add(`${method} ${template}`);
  if (res.status === 204) return undefined;
  const text = await res.text();
  if (contentType !== 'application/json') return text;
  const body = JSON.parse(text) as unknown;
  const validate = await validatorFor(pointer('paths', template, method.toLowerCase(), 'responses', status, 'content', 'application/json', 'schema'));
  expect(validate(body), `${method} ${template} ${status}: ${JSON.stringify(validate.errors)}\n${text.slice(0, 500)}`).toBe(true);
  return body;
}

const compiled = new Map<string, ReturnType<Ajv2020['compile']>>();
/**
 * Compiling blocks this process, the server's too, for a while on a busy machine; afterwards the pause lets
 * both sides see keep-alive connections the server's idle timer closed meanwhile, so the next request does
 * not go out on one of them (a reset that would be the test's own doing).
 */
async function validatorFor(ref: string, pause = true) {
  let v = compiled.get(ref);
  if (!v) {
    v = ajv.compile({ $ref: ref });
    compiled.set(ref, v);
    if (pause) await new Promise((r) => setTimeout(r, 200));
  }
  return v;
}


describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1, public, and lists exactly the routes the admin API has', () => {
    expect(doc.openapi).toBe('3.1.0');
    const sources = readdirSync('src/admin').filter((f) => f.endsWith('.ts')).map((f) => readFileSync(path.join('src/admin', f), 'utf8')).join('\n');
    const routes = [...sources.matchAll(/\.add\('(GET|POST|PATCH|DELETE)', '(\/admin\/api[^']*)'/g)].map(([, m, p]) => `${m} ${p!.replace(/:([a-z_]+)/g, '{$1}')}`);
    expect(routes.length).toBeGreaterThan(30);
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).filter((r) => r !== 'GET /admin/api/openapi.json');
    expect(documented.sort()).toEqual(routes.sort());
  });

  it('matches real answers from every route', async () => {
    const a = (method: string, p: string, body?: unknown, token?: string) => w.t.admin(method, p, body, token);
    const enc = encodeURIComponent;

    // admins
    await conforms(await a('GET', '/admin/api/admins'), 'GET', '/admin/api/admins');
    const admin = await conforms(await a('POST', '/admin/api/admins', { name: 'ops' }), 'POST', '/admin/api/admins') as { id: string };
    await conforms(await a('PATCH', `/admin/api/admins/${admin.id}`, { role: 'auditor' }), 'PATCH', '/admin/api/admins/{id}');
    await conforms(await a('PATCH', '/admin/api/admins/adm_nope', { role: 'auditor' }), 'PATCH', '/admin/api/admins/{id}');
    await conforms(await a('DELETE', `/admin/api/admins/${admin.id}`), 'DELETE', '/admin/api/admins/{id}');
    await conforms(await a('POST', '/admin/api/admins', { name: 'x', colour: 'blue' }), 'POST', '/admin/api/admins');

    // clients
    await conforms(await a('GET', '/admin/api/clients?limit=2'), 'GET', '/admin/api/clients');
    await conforms(await a('POST', '/admin/api/clients', { client_id: 'oa-client', scope: 'expenses:read' }), 'POST', '/admin/api/clients');
    await conforms(await a('POST', '/admin/api/clients', { client_id: 'oa-client' }), 'POST', '/admin/api/clients');
    await conforms(await a('GET', '/admin/api/clients/oa-client'), 'GET', '/admin/api/clients/{id}');
    await conforms(await a('GET', '/admin/api/clients/nope'), 'GET', '/admin/api/clients/{id}');
    await conforms(await a('PATCH', '/admin/api/clients/oa-client', { client_name: 'OA' }), 'PATCH', '/admin/api/clients/{id}');
    await conforms(await a('POST', '/admin/api/clients/oa-client/secret'), 'POST', '/admin/api/clients/{id}/secret');
    await conforms(await a('DELETE', '/admin/api/clients/oa-client'), 'DELETE', '/admin/api/clients/{id}');

    // resources
    const rid = enc('https://oa.example');
    await conforms(await a('GET', '/admin/api/resources'), 'GET', '/admin/api/resources');
    await conforms(await a('POST', '/admin/api/resources', { identifier: 'https://oa.example', name: 'OA', scopes: [{ name: 'oa:read', sensitivity: 'public', operation: 'read' }] }), 'POST', '/admin/api/resources');
    await conforms(await a('GET', `/admin/api/resources/${rid}`), 'GET', '/admin/api/resources/{id}');
    await conforms(await a('PATCH', `/admin/api/resources/${rid}`, { access_token_ttl: 60 }), 'PATCH', '/admin/api/resources/{id}');
    await conforms(await a('DELETE', `/admin/api/resources/${rid}`), 'DELETE', '/admin/api/resources/{id}');

    // issuers
    const iid = enc('https://oa-idp.example');
    await conforms(await a('GET', '/admin/api/issuers'), 'GET', '/admin/api/issuers');
    await conforms(await a('POST', '/admin/api/issuers', { issuer: 'https://oa-idp.example', jwks_uri: 'https://oa-idp.example/jwks', audiences: ['intentgate'] }), 'POST', '/admin/api/issuers');
    await conforms(await a('GET', `/admin/api/issuers/${iid}`), 'GET', '/admin/api/issuers/{id}');
    await conforms(await a('PATCH', `/admin/api/issuers/${iid}`, { typs: ['JWT'] }), 'PATCH', '/admin/api/issuers/{id}');
    await conforms(await a('DELETE', `/admin/api/issuers/${iid}`), 'DELETE', '/admin/api/issuers/{id}');

    // keys
    await conforms(await a('GET', '/admin/api/keys'), 'GET', '/admin/api/keys');
    await conforms(await a('POST', '/admin/api/keys/rotate', { overlap_seconds: 0 }), 'POST', '/admin/api/keys/rotate');

    // exchanges: a grant (a task), a pending review, a refusal
    const granted = await w.exchange('agent', exchangeParams(await w.userToken()));
    expect(granted.status).toBe(200);
    const { access_token: at } = await granted.json() as { access_token: string };
    const task = JSON.parse(Buffer.from(at.split('.')[1]!, 'base64url').toString()).task as string;
    const ask = async (id: string) => (await (await w.exchange('agent', exchangeParams(await w.userToken(), {
      scope: 'expenses:approve', authorization_details: details('approve', { type: 'Expense', id, amount: 5000 }), intent: 'Approve it',
    }))).json()) as { review_id: string };

    // policies
    const policyText = readFileSync('test/fixtures/policy/review.yaml', 'utf8');
    await conforms(await a('GET', '/admin/api/policies'), 'GET', '/admin/api/policies');
    await conforms(await a('POST', '/admin/api/policies', { document: policyText, source: 'openapi test' }), 'POST', '/admin/api/policies');
    await conforms(await a('GET', '/admin/api/policies/current'), 'GET', '/admin/api/policies/{version}');
    await conforms(await a('GET', '/admin/api/policies/999'), 'GET', '/admin/api/policies/{version}');
    await conforms(await a('POST', '/admin/api/policies/simulate', {
      client_id: 'agent', user: { issuer: 'https://idp.test', sub: 'alice', claims: {} }, resource: 'https://expenses.example', scope: 'expenses:read',
    }), 'POST', '/admin/api/policies/simulate');
    await conforms(await a('POST', '/admin/api/policies/replay', { document: policyText }), 'POST', '/admin/api/policies/replay');
    await conforms(await a('POST', '/admin/api/policies/validate', { document: policyText }), 'POST', '/admin/api/policies/validate');
    await conforms(await a('POST', '/admin/api/policies/validate', { document: 'rules: [' }), 'POST', '/admin/api/policies/validate');
    await conforms(await a('GET', '/admin/api/whoami'), 'GET', '/admin/api/whoami');
    await conforms(await a('GET', '/admin/api/whoami', undefined, reviewer), 'GET', '/admin/api/whoami');

    // tasks, reviews, revocations
    await conforms(await a('GET', `/admin/api/tasks/${enc(task)}`), 'GET', '/admin/api/tasks/{task}');
    await conforms(await a('GET', '/admin/api/tasks/nope'), 'GET', '/admin/api/tasks/{task}');
    await conforms(await a('GET', '/admin/api/tasks?limit=5'), 'GET', '/admin/api/tasks');
    await conforms(await a('POST', `/admin/api/tasks/${enc(task)}/suspend`, { reason: 'checking' }), 'POST', '/admin/api/tasks/{task}/suspend');
    await conforms(await a('POST', `/admin/api/tasks/${enc(task)}/resume`), 'POST', '/admin/api/tasks/{task}/resume');
    await conforms(await a('POST', '/admin/api/tasks/tsk_nope/revoke'), 'POST', '/admin/api/tasks/{task}/revoke');
    const r1 = await ask('exp_oa_1');
    const r2 = await ask('exp_oa_2');
    await conforms(await a('GET', '/admin/api/reviews?status=pending'), 'GET', '/admin/api/reviews');
    await conforms(await a('POST', `/admin/api/reviews/${r1.review_id}/approve`, { comment: 'fine' }, reviewer), 'POST', '/admin/api/reviews/{id}/approve');
    await conforms(await a('POST', `/admin/api/reviews/${r2.review_id}/deny`, undefined, reviewer), 'POST', '/admin/api/reviews/{id}/deny');
    await conforms(await a('POST', '/admin/api/reviews/rev_nope/deny', undefined, reviewer), 'POST', '/admin/api/reviews/{id}/deny');
    await conforms(await a('POST', '/admin/api/revocations', { task, reason: 'done' }), 'POST', '/admin/api/revocations');

    // ledger
    await conforms(await a('GET', '/admin/api/ledger?limit=5'), 'GET', '/admin/api/ledger');
    await conforms(await a('GET', '/admin/api/ledger/stats?hours=2'), 'GET', '/admin/api/ledger/stats');
    await conforms(await a('GET', '/admin/api/ledger/stats?hours=0'), 'GET', '/admin/api/ledger/stats');
    await conforms(await a('POST', '/admin/api/ledger/checkpoint'), 'POST', '/admin/api/ledger/checkpoint');
    await conforms(await a('POST', '/admin/api/ledger/checkpoint'), 'POST', '/admin/api/ledger/checkpoint');
    const report = await conforms(await a('POST', '/admin/api/ledger/verify'), 'POST', '/admin/api/ledger/verify') as { ok: boolean; checkpoints: number };
    expect(report.ok).toBe(true);
    expect(report.checkpoints).toBeGreaterThanOrEqual(1);
    const exported = await conforms(await a('GET', '/admin/api/ledger/export'), 'GET', '/admin/api/ledger/export', 'application/x-ndjson') as string;
    const entry = await validatorFor('openapi#/components/schemas/LedgerEntry');
    const lines = exported.trim().split('\n');
    expect(lines.length).toBeGreaterThan(20);
    for (const l of lines) expect(entry(JSON.parse(l)), JSON.stringify(entry.errors)).toBe(true);

    // refusals common to every operation
    await conforms(await fetch(`${w.t.url}/admin/api/clients`), 'GET', '/admin/api/clients');
    await conforms(await a('POST', '/admin/api/clients', { client_id: 'x' }, reviewer), 'POST', '/admin/api/clients');

    const undocumentedChecks = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .filter((r) => r !== 'GET /admin/api/openapi.json' && !checked.has(r));
    expect(undocumentedChecks).toEqual([]);
  }, 300_000);

  it('every $ref resolves and every schema compiles', async () => {
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [m, o] of Object.entries(ops)) {
        for (const [status, r] of Object.entries(o.responses)) {
          if (r.content?.['application/json']) await expect(validatorFor(pointer('paths', p, m, 'responses', status, 'content', 'application/json', 'schema'), false)).resolves.toBeDefined();
        }
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }, 300_000);
});

describe('ledger verify and export over the admin API', () => {
  const raw = (method: string, p: string, body?: string, headers: Record<string, string> = {}, token = w.t.adminToken) =>
    fetch(`${w.t.url}${p}`, { method, headers: { authorization: `Bearer ${token}`, ...headers }, ...(body === undefined ? {} : { body }) });

  it('verify streams progress then the report as NDJSON when asked', async () => {
    const res = await raw('POST', '/admin/api/ledger/verify', undefined, { accept: 'application/x-ndjson' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { progress?: { entries: number }; report?: { ok: boolean; entries: number } });
    expect(lines.at(-1)!.report).toMatchObject({ ok: true });
    const progress = lines.slice(0, -1).map((l) => l.progress!.entries);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(lines.at(-1)!.report!.entries);
  });

  it('verify with a public key the caller holds: another key fails the checkpoints, a bad one is a 400', async () => {
    const { generateKeyPair, exportJWK } = await import('jose');
    const other = await exportJWK((await generateKeyPair('EdDSA', { crv: 'Ed25519' })).publicKey);
    const res = await raw('POST', '/admin/api/ledger/verify', JSON.stringify({ public_key: JSON.stringify(other) }), { 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: false, problem: { message: expect.stringContaining('invalid signature') } });
    const bad = await raw('POST', '/admin/api/ledger/verify', JSON.stringify({ public_key: 'not a key' }), { 'content-type': 'application/json' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'invalid_request', field: 'public_key' });
  });

  it('refuses malformed, oversized and hostile input', async () => {
    const json = { 'content-type': 'application/json' };
    expect((await raw('POST', '/admin/api/ledger/verify', '{"anchors":"/etc"}', json)).status).toBe(400);
    expect((await raw('POST', '/admin/api/ledger/verify', JSON.stringify({ public_key: 'x'.repeat(10_001) }), json)).status).toBe(400);
    expect((await raw('POST', '/admin/api/ledger/verify', 'x'.repeat(70_000), json)).status).toBe(413);
    expect((await raw('POST', '/admin/api/ledger/verify', '{"public_key":"\\u0000"}', json)).status).toBe(400);
    expect((await raw('GET', '/admin/api/ledger/export?since=yesterday')).status).toBe(400);
    expect((await raw('GET', '/admin/api/ledger/export?since=1h&since=2h')).status).toBe(400);
    expect((await raw('GET', `/admin/api/ledger/export?since=${'9'.repeat(3000)}`)).status).toBe(400);
    expect((await raw('GET', '/admin/api/ledger/export', undefined, {}, 'nope')).status).toBe(401);
    expect((await raw('POST', '/admin/api/ledger/export')).status).toBe(405);
  });

  it('an auditor may verify and export; since filters', async () => {
    const auditor = ((await (await w.t.admin('POST', '/admin/api/admins', { name: 'audrey', role: 'auditor' })).json()) as { token: string }).token;
    expect((await raw('POST', '/admin/api/ledger/verify', undefined, {}, auditor)).status).toBe(200);
    const all = (await (await raw('GET', '/admin/api/ledger/export', undefined, {}, auditor)).text()).trim().split('\n');
    const future = await raw('GET', `/admin/api/ledger/export?since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`, undefined, {}, auditor);
    expect(future.status).toBe(200);
    expect(await future.text()).toBe('');
    expect(all.length).toBeGreaterThan(10);
  });
});
