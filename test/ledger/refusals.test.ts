import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CompactEncrypt, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthFailureLedger } from '../../src/ledger/auth_failures.ts';
import { publicKeyFrom, verifyLedger } from '../../src/ledger/verify.ts';
import type { LedgerJob, LedgerWriter } from '../../src/ledger/writer.ts';
import { basicAuth, tokenRequest } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, details, EXPENSES, exchangeParams, IDP, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';

// Every refusal after client authentication is a ledger entry with the client, the error and the
// reason; failed client authentications are counted and recorded in bounded form (one entry per
// registered client, and one for all unregistered client_ids, per interval, with a count).

let w: World;
// The periodic flush of failed authentications is set beyond the file's run: entries are written on shutdown (restart).
beforeAll(async () => { w = await startWorld({ rate_limits: { token: { burst: 10_000, per_second: 10_000 } }, ledger: { auth_failure_interval: 3600 } }); });
afterAll(async () => { await w?.t.stop(); });

type Entry = { seq: number; kind: string; actor: string; payload: Record<string, unknown> };
type Body = { error?: string; error_description?: string; access_token?: string };

async function ledger(query: string): Promise<Entry[]> {
  const res = await w.t.admin('GET', `/admin/api/ledger?${query}&limit=500`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Entry[] }).items;
}

const newest = async (kind: string): Promise<Entry | undefined> => (await ledger(`kind=${kind}`))[0];
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The request is refused with `error`, and the newest entry of `kind` (token.refused unless said) is
 * this refusal: its client, error and reason exactly as answered, never the token itself.
 */
async function refusedAndRecorded(send: () => Promise<Response>, error: string, client: string, kind = 'token.refused'): Promise<Entry> {
  const before = (await newest(kind))?.seq ?? 0;
  const res = await send();
  const body = await res.json() as Body;
  expect({ status: res.status, error: body.error }, JSON.stringify(body)).toEqual({ status: 400, error });
  expect(body).not.toHaveProperty('access_token');
  const entry = (await newest(kind))!;
  expect(entry?.seq ?? 0).toBeGreaterThan(before);
  expect(entry.actor).toBe(client);
  expect(entry.payload).toMatchObject({ client_id: client, error, error_description: body.error_description });
  return entry;
}

const exchange = (subject: string, extra: Record<string, string | string[]> = {}, client = 'agent') => () => w.exchange(client, exchangeParams(subject, extra));

async function foreignKeyToken(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256');
  return w.userToken(claims, header, privateKey);
}

async function delegationTo(audience: string): Promise<string> {
  const res = await w.exchange('agent', exchangeParams(await w.userToken(), { resource: [] as unknown as string, audience, scope: 'expenses:read', intent: 'Hand the expense reading to the sub-agent' }));
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

describe('refusals after client authentication are recorded', () => {
  it('records malformed requests, with the client and the reason', async () => {
    const token = await w.userToken();
    const e = await refusedAndRecorded(exchange(token, { subject_token_type: 'urn:example:nonsense' }), 'invalid_request', 'agent');
    expect(e.payload).toMatchObject({ endpoint: 'token', grant_type: TOKEN_EXCHANGE, decision: 'refused', subject_token: { sha256: sha256(token), iss: IDP, kid: 'idp-1', form: 'jws' } });
    await refusedAndRecorded(exchange(token, { resource: [EXPENSES, 'https://hr.example'] }), 'invalid_target', 'agent');
    await refusedAndRecorded(exchange(token, { scope: 'expenses:read  expenses:submit' }), 'invalid_scope', 'agent');
    await refusedAndRecorded(exchange(token, { authorization_details: JSON.stringify([{ type: 'undeclared_type' }]) }), 'invalid_authorization_details', 'agent');
  });

  it('records what the edge refuses before oidc-provider runs, when the HTTP Basic credentials hold', async () => {
    const token = await w.userToken();
    // A duplicate scope, a control byte in resource, 101 parameters: refused before any client was authenticated.
    const dup = await refusedAndRecorded(exchange(token, { scope: ['expenses:read', 'expenses:submit'] }), 'invalid_request', 'agent');
    expect(dup.payload).toMatchObject({ endpoint: 'token', decision: 'refused' });
    await refusedAndRecorded(exchange(token, { resource: 'https://expenses.example/\u0000' }), 'invalid_request', 'agent');
    const junk: Record<string, string> = {};
    for (let i = 0; i < 101; i++) junk[`junk${i}`] = 'x';
    await refusedAndRecorded(exchange(token, junk), 'invalid_request', 'agent');
    // With a wrong secret the same refusal is a failed client authentication: nothing is recorded for the client.
    const before = (await newest('token.refused'))?.seq ?? 0;
    const wrong = await tokenRequest(w.t.url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(token, { scope: ['expenses:read', 'expenses:read'] }) }, ['other-agent', 'not-the-secret']);
    expect(wrong.status).toBe(400);
    expect((await newest('token.refused'))?.seq ?? 0).toBe(before);
  });

  it('records subject tokens refused: forged signature, alg none, foreign issuer, JWE, expired, not presentable', async () => {
    const forged = await foreignKeyToken();
    const f = await refusedAndRecorded(exchange(forged), 'invalid_request', 'agent');
    expect(f.payload.error_description).toMatch(/signature/);
    expect(f.payload.subject_token).toEqual({ sha256: sha256(forged), form: 'jws', alg: 'ES256', kid: 'idp-1', typ: 'JWT', iss: IDP });
    expect(f.payload).not.toHaveProperty('user');

    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: IDP, sub: 'alice', aud: 'intentgate', iat: now, exp: now + 600 })}.`;
    expect((await refusedAndRecorded(exchange(none), 'invalid_request', 'agent')).payload.subject_token).toMatchObject({ alg: 'none', iss: IDP });

    const foreign = await foreignKeyToken({ iss: 'https://evil.example' });
    expect((await refusedAndRecorded(exchange(foreign), 'invalid_request', 'agent')).payload.subject_token).toMatchObject({ iss: 'https://evil.example' });

    const enc = await generateKeyPair('ECDH-ES+A256KW');
    const jwe = await new CompactEncrypt(new TextEncoder().encode(await w.userToken()))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', cty: 'JWT', kid: 'idp-1' }).encrypt(enc.publicKey);
    expect((await refusedAndRecorded(exchange(jwe), 'invalid_request', 'agent')).payload.subject_token).toMatchObject({ form: 'jwe', alg: 'ECDH-ES+A256KW', sha256: sha256(jwe) });

    const expired = await w.userToken({ iat: now - 7200, exp: now - 3600 });
    expect((await refusedAndRecorded(exchange(expired), 'invalid_request', 'agent')).payload.error_description).toMatch(/expired/);

    const forSubAgent = await delegationTo('sub-agent');
    const notPresentable = await refusedAndRecorded(exchange(forSubAgent, {}, 'other-agent'), 'invalid_request', 'other-agent');
    expect(notPresentable.payload.error_description).toMatch(/may not be presented/);

    // A refusal never keeps the token itself: not in any entry, nor in the personal values.
    const rows = await w.t.server.db('ledger_entries').select('payload');
    const personal = await w.t.server.db('ledger_personal').select('value');
    const stored = [...rows.map((r: { payload: Buffer }) => Buffer.from(r.payload).toString('utf8')), ...personal.map((p: { value: string }) => p.value)].join('\n');
    for (const t of [forged, none, foreign, jwe, expired, forSubAgent]) expect(stored).not.toContain(t.split('.')[1]!);
  });

  it('records actor tokens and DPoP proofs refused, with the user whose token was authenticated', async () => {
    const notTheClient = await w.userToken({ sub: 'mallory' });
    const actor = await refusedAndRecorded(exchange(await w.userToken(), { actor_token: notTheClient, actor_token_type: ACCESS_TOKEN_TYPE }), 'invalid_request', 'agent');
    expect(actor.payload).toMatchObject({ user: { issuer: IDP, sub: 'alice' }, target: EXPENSES, actor_token: { sha256: sha256(notTheClient), iss: IDP } });
    expect(actor.payload.intent).toBe(exchangeParams('').intent);

    const proofRefused = await refusedAndRecorded(async () => {
      const form = new URLSearchParams({ grant_type: TOKEN_EXCHANGE, ...(exchangeParams(await w.userToken()) as Record<string, string>) });
      return fetch(`${w.t.url}/token`, { method: 'POST', headers: { authorization: basicAuth(...w.creds.agent!), 'content-type': 'application/x-www-form-urlencoded', dpop: 'not-a-proof' }, body: form });
    }, 'invalid_dpop_proof', 'agent');
    expect(proofRefused.payload).toMatchObject({ user: { issuer: IDP, sub: 'alice' } });
  });

  it('records decisions refused at the target, scope or details step as exchange.denied, with the reason', async () => {
    const token = await w.userToken();
    await refusedAndRecorded(exchange(token, { resource: 'https://unknown.example' }), 'invalid_target', 'agent', 'exchange.denied');
    await refusedAndRecorded(exchange(token, { scope: 'expenses:read hr:read' }), 'invalid_scope', 'agent', 'exchange.denied');
    // A hop asking for details its parent did not carry.
    const parent = await w.exchange('agent', exchangeParams(token, {
      resource: [] as unknown as string, audience: 'sub-agent', scope: 'expenses:submit', authorization_details: details('submit', { type: 'Expense', id: 'exp_1', amount: 10 }),
    }));
    expect(parent.status).toBe(200);
    const delegation = ((await parent.json()) as { access_token: string }).access_token;
    await refusedAndRecorded(() => w.exchange('sub-agent', {
      subject_token: delegation, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:submit', intent: 'Submit another expense',
      authorization_details: details('submit', { type: 'Expense', id: 'exp_2', amount: 10 }),
    }), 'invalid_authorization_details', 'sub-agent', 'exchange.denied');
  });

  it('records refusals oidc-provider makes after client authentication, for every grant and endpoint', async () => {
    const grant = await refusedAndRecorded(exchange(await w.userToken(), {}, 'batch'), 'unauthorized_client', 'batch');
    expect(grant.payload).toMatchObject({ endpoint: 'token', grant_type: TOKEN_EXCHANGE });
    const cc = await refusedAndRecorded(() => tokenRequest(w.t.url, { grant_type: 'client_credentials', resource: 'https://unknown.example', scope: 'expenses:read' }, w.creds.batch), 'invalid_target', 'batch');
    expect(cc.payload).toMatchObject({ grant_type: 'client_credentials' });
    const introspection = await refusedAndRecorded(() => fetch(`${w.t.url}/token/introspection`, {
      method: 'POST', headers: { authorization: basicAuth(...w.creds['expenses-rs']!), 'content-type': 'application/x-www-form-urlencoded' }, body: '',
    }), 'invalid_request', 'expenses-rs');
    expect(introspection.payload).toMatchObject({ endpoint: 'introspection' });
    expect(introspection.payload).not.toHaveProperty('grant_type');
  });

  it('never records an unauthenticated request as a registered client\'s refusal', async () => {
    const before = (await newest('token.refused'))?.seq ?? 0;
    // oidc-provider names the client before it checks credentials; with client-attestation headers it can
    // then answer invalid_request although nothing was authenticated.
    for (const value of ['', 'x']) {
      const res = await fetch(`${w.t.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'oauth-client-attestation-pop': value },
        body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, client_id: 'agent', ...(exchangeParams(await w.userToken()) as Record<string, string>) }),
      });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
    expect((await newest('token.refused'))?.seq ?? 0).toBe(before);
  });

  it('fails closed: a refusal that cannot be recorded is answered 503, never as a plain refusal', async () => {
    const db = w.t.server.db;
    await db.raw(`CREATE FUNCTION refuse_ledger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'ledger is read-only'; END $$`);
    await db.raw('CREATE TRIGGER refuse_ledger BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION refuse_ledger()');
    try {
      for (const res of [await exchange(await foreignKeyToken())(), await exchange(await w.userToken(), {}, 'batch')()]) {
        expect(res.status).toBe(503);
        expect(await res.json()).toMatchObject({ error: 'temporarily_unavailable' });
      }
    } finally {
      await db.raw('DROP TRIGGER refuse_ledger ON ledger_entries');
      await db.raw('DROP FUNCTION refuse_ledger()');
    }
  });
});

async function metric(endpoint: string, reason: string): Promise<number> {
  const text = await (await fetch(`${w.t.url}/metrics`)).text();
  const m = new RegExp(`^intentgate_client_auth_failures_total\\{endpoint="${endpoint}",reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('failed client authentications', () => {
  it('are counted in metrics and recorded as one entry per registered client (one for all unknown ids) with the count', async () => {
    const N = 25;
    const refusedBefore = (await ledger('kind=token.refused')).length;
    const failedBefore = (await ledger('kind=client_auth.failed')).length;
    const bad = (await Promise.all([metric('token', 'invalid_credentials'), metric('token', 'unknown_client'), metric('token', 'missing')]));

    const token = await w.userToken();
    for (let i = 0; i < N; i++) {
      const res = await tokenRequest(w.t.url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(token) }, ['agent', `wrong-${i}`]);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'invalid_client' });
    }
    // Unknown client_ids never become labels or entries of their own.
    for (let i = 0; i < 5; i++) expect((await tokenRequest(w.t.url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(token) }, [`nobody-${i}`, 'x'])).status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await tokenRequest(w.t.url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(token) })).status).toBe(401);

    expect(await metric('token', 'invalid_credentials')).toBe(bad[0]! + N);
    expect(await metric('token', 'unknown_client')).toBe(bad[1]! + 5);
    expect(await metric('token', 'missing')).toBe(bad[2]! + 3);
    const text = await (await fetch(`${w.t.url}/metrics`)).text();
    expect(text).not.toMatch(/nobody-/);

    // Nothing was refused after authentication, so nothing of the kind was recorded, and nothing yet of the counts.
    expect((await ledger('kind=token.refused')).length).toBe(refusedBefore);
    expect((await ledger('kind=client_auth.failed')).length).toBe(failedBefore);

    await w.t.restart(); // shutdown writes what was counted
    const entries = await ledger('kind=client_auth.failed');
    // agent's, the unregistered pool's, and other-agent's wrong secret from the edge test above.
    expect(entries.slice(0, entries.length - failedBefore).map((e) => e.payload.client_id ?? 'unregistered').sort()).toEqual(['agent', 'other-agent', 'unregistered']);
    const forAgent = await ledger('kind=client_auth.failed&client_id=agent');
    expect(forAgent).toHaveLength(1);
    expect(forAgent[0]!.payload).toMatchObject({ client_id: 'agent', count: N, reasons: { invalid_credentials: N }, endpoints: { token: N } });
    const unregistered = entries.find((e) => e.payload.unregistered === true)!;
    expect(unregistered.payload).toMatchObject({ client_id: null, count: 8, reasons: { unknown_client: 5, missing: 3 } });
    expect(JSON.stringify(unregistered)).not.toMatch(/nobody-/);

    // A second burst, after the flush, is a new entry with its own count.
    for (let i = 0; i < 3; i++) expect((await tokenRequest(w.t.url, { grant_type: 'client_credentials', resource: EXPENSES }, ['batch', 'wrong'])).status).toBe(401);
    await w.t.restart();
    const forBatch = await ledger('kind=client_auth.failed&client_id=batch');
    expect(forBatch).toHaveLength(1);
    expect(forBatch[0]!.payload).toMatchObject({ count: 3 });
    expect(await ledger('kind=client_auth.failed&client_id=agent')).toHaveLength(1);
  });

  it('counts failures at introspection and the ledger endpoints too', async () => {
    const before = await metric('introspection', 'invalid_credentials');
    const res = await fetch(`${w.t.url}/token/introspection`, {
      method: 'POST', headers: { authorization: basicAuth('expenses-rs', 'wrong'), 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x',
    });
    expect(res.status).toBe(401);
    expect(await metric('introspection', 'invalid_credentials')).toBe(before + 1);
    const ledgerBefore = await metric('ledger', 'invalid_credentials');
    const ev = await fetch(`${w.t.url}/ledger/events`, { method: 'POST', headers: { authorization: basicAuth('expenses-rs', 'wrong'), 'content-type': 'application/json' }, body: '{}' });
    expect(ev.status).toBe(401);
    expect(await metric('ledger', 'invalid_credentials')).toBe(ledgerBefore + 1);
  });

  it('leaves a ledger that still verifies', async () => {
    const jwk = readFileSync(path.join(w.t.env.DATA_DIR!, 'ledger-key.jwk'), 'utf8');
    const cp = await w.t.admin('POST', '/admin/api/ledger/checkpoint');
    // 409: nothing new since the checkpoint the restart above made on shutdown.
    expect([201, 409]).toContain(cp.status);
    const report = await verifyLedger(w.t.server.db, await publicKeyFrom(jwk), w.t.config.ledger.anchorDir);
    expect(report.problem).toBeUndefined();
    expect(report.ok).toBe(true);
  });
});

describe('the bounded record of failed client authentications', () => {
  it('keeps one tally per registered client and one for the rest, and keeps counts a failed write could not record', async () => {
    const jobs: LedgerJob[] = [];
    let down = true;
    const writer = { commit: async (job: LedgerJob) => { if (down) throw new Error('storage down'); jobs.push(job); return []; } } as unknown as LedgerWriter;
    const tallies = new AuthFailureLedger(writer);
    for (let i = 0; i < 1000; i++) tallies.add('token', 'invalid_credentials', 'agent');
    for (let i = 0; i < 1000; i++) tallies.add('token', 'unknown_client', undefined);
    await expect(tallies.flush()).rejects.toThrow('storage down');
    tallies.add('introspection', 'missing', undefined);
    down = false;
    expect(await tallies.flush()).toBe(2);
    expect(await tallies.flush()).toBe(0);
    const payloads = jobs.flatMap((j) => j.entries.map((e) => e.payload));
    expect(payloads).toEqual([
      expect.objectContaining({ client_id: 'agent', count: 1000, reasons: { invalid_credentials: 1000 }, endpoints: { token: 1000 } }),
      expect.objectContaining({ client_id: null, unregistered: true, count: 1001, reasons: { unknown_client: 1000, missing: 1 }, endpoints: { token: 1000, introspection: 1 } }),
    ]);
  });
});
