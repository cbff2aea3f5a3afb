import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyFrom, verifyLedger } from '../../src/ledger/verify.ts';
import { ACCESS_TOKEN_TYPE, EXPENSES, IDP, exchangeParams, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';
import { lastEntry } from '../helpers/ledger.ts';

// Findings of the first security review, each pinned by a test.
let w: World;
beforeAll(async () => { w = await startWorld({ rate_limits: { token: { burst: 100_000, per_second: 100_000 } } }); });
afterAll(async () => { await w?.t.stop(); });

function basicHeader(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

describe('hardening', () => {
  it('refuses a DPoP-bound subject token sent without a proof (never rebinds it as Bearer)', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken({ cnf: { jkt: 'A'.repeat(43) } })));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_dpop_proof' });
  });

  it('applies user-claim rules on every delegation hop, not only the first', async () => {
    const base = readFileSync('test/fixtures/policy/exchange.yaml', 'utf8');
    const doc = base.replace('rules:\n', 'rules:\n  - id: suspended-users\n    effect: deny\n    reason: user_suspended\n    resource: https://expenses.example\n    when: { user: { account_status: suspended } }\n');
    expect((await w.t.admin('POST', '/admin/api/policies', { document: doc })).status).toBe(201);
    const subject = await w.userToken({ account_status: 'suspended' });
    expect((await (await w.exchange('agent', exchangeParams(subject))).json() as { reasons: string[] }).reasons).toEqual(['user_suspended']);
    const params = exchangeParams(subject, { audience: 'sub-agent' });
    delete params.resource;
    const delegation = await w.exchange('agent', params);
    expect(delegation.status).toBe(200);
    const { access_token } = await delegation.json() as { access_token: string };
    const hop = await w.exchange('sub-agent', { subject_token: access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES, scope: 'expenses:read', intent: 'Read' });
    expect(hop.status).toBe(400);
    expect(await hop.json()).toMatchObject({ error: 'access_denied', reasons: ['user_suspended'] });
    expect((await w.t.admin('POST', '/admin/api/policies', { document: base })).status).toBe(201);
  });

  it('refuses a revoked actor token', async () => {
    const own = await w.exchange('agent', exchangeParams(await w.userToken()));
    const { access_token } = await own.json() as { access_token: string };
    expect((await w.t.admin('POST', '/admin/api/revocations', { jti: decodeJwt(access_token).jti })).status).toBe(201);
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { actor_token: access_token, actor_token_type: ACCESS_TOKEN_TYPE }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: 'actor_token has been revoked or is no longer live' });
  });

  it('answers lone surrogates with the RFC error, not 503, and records nothing broken', async () => {
    const before = Number((await w.t.server.db('ledger_head').first('seq')).seq);
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), {
      scope: 'expenses:submit', authorization_details: '[{"type":"tool_call","action":"submit","object":{"type":"Expense","id":"\\ud800"}}]',
    }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_authorization_details' });
    const event = await fetch(`${w.t.url}/ledger/events`, {
      method: 'POST', headers: { authorization: basicHeader(...w.creds['expenses-rs']!), 'content-type': 'application/json' },
      body: '{"jti":"x","outcome":"success","action":"read","object":{"id":"\\ud800"}}',
    });
    expect(event.status).toBe(400);
    // The refused exchange is recorded (a refusal after client authentication), and nothing else is.
    expect(Number((await w.t.server.db('ledger_head').first('seq')).seq)).toBe(before + 1);
    expect((await lastEntry(w.t.server.db, 'token.refused')).payload).toMatchObject({ client_id: 'agent', error: 'invalid_authorization_details' });
  });

  it('refuses a signed subject token whose claims are not UTF-8, instead of reading U+FFFD', async () => {
    // Signed by the trusted issuer's key, so only the decoding can refuse it: two different byte strings in
    // `sub` must never be read as one user.
    const now = Math.floor(Date.now() / 1000);
    const b64 = (b: Buffer) => b.toString('base64url');
    const header = b64(Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'idp-1', typ: 'JWT' })));
    const claims = JSON.stringify({ iss: IDP, aud: 'intentgate', sub: 'alice-SUFFIX', iat: now, exp: now + 300, scope: 'expenses:read expenses:submit' });
    const raw = Buffer.from(claims, 'utf8');
    const at = raw.indexOf('SUFFIX');
    raw[at] = 0xff; // never valid in UTF-8
    const input = `${header}.${b64(raw)}`;
    const sig = Buffer.from(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, w.idpKey, Buffer.from(input)));
    const res = await w.exchange('agent', exchangeParams(`${input}.${b64(sig)}`));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: 'subject_token is not a JWT' });
  });

  it('treats a malformed client_id as an unknown client, never a 500', async () => {
    const token = await fetch(`${w.t.url}/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, client_id: 'a\u0000b', client_secret: 'x' }),
    });
    expect(token.status).toBe(401);
    const events = await fetch(`${w.t.url}/ledger/events`, { method: 'POST', headers: { authorization: basicHeader('a\u0000b', 'x'), 'content-type': 'application/json' }, body: '{}' });
    expect(events.status).toBe(401);
  });

  it('keeps personal values from resource servers, and detects a rewritten one', async () => {
    const intent = `Personal ${Date.now()}`;
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { intent }));
    const { access_token } = await res.json() as { access_token: string };
    await w.t.admin('POST', '/admin/api/ledger/checkpoint');
    const { items } = await (await w.t.admin('GET', `/admin/api/ledger?kind=exchange.granted&jti=${decodeJwt(access_token).jti}`)).json() as { items: Array<{ seq: number; payload: Record<string, unknown> }> };
    const entry = items[0]!;
    expect(entry.payload.intent).toBe(intent);
    const proof = await (await fetch(`${w.t.url}/ledger/entries/${entry.seq}/proof`, { headers: { authorization: basicHeader(...w.creds['expenses-rs']!) } })).json() as { entry: { payload: Record<string, unknown> } };
    expect(proof.entry.payload).not.toHaveProperty('intent');
    expect(proof.entry.payload).not.toHaveProperty('context');
    expect(proof.entry.payload.intent_sha256).toBe(entry.payload.intent_sha256);

    const hash = entry.payload.intent_sha256 as string;
    await expect(w.t.server.db('ledger_personal').where({ hash }).update({ value: '"forged"' })).rejects.toMatchObject({ code: '42501' });
    // An attacker with write access deletes and re-inserts under the same key.
    await w.t.server.db('ledger_personal').where({ hash }).delete();
    await w.t.server.db('ledger_personal').insert({ hash, value: '"forged"' });
    const after = await (await w.t.admin('GET', `/admin/api/ledger?kind=exchange.granted&jti=${decodeJwt(access_token).jti}`)).json() as { items: Array<{ payload: Record<string, unknown> }> };
    expect(after.items[0]!.payload).not.toHaveProperty('intent');
    const jwk = readFileSync(path.join(w.t.env.DATA_DIR!, 'ledger-key.jwk'), 'utf8');
    const report = await verifyLedger(w.t.server.db, await publicKeyFrom(jwk), w.t.config.ledger.anchorDir);
    expect(report.problem).toEqual({ seq: entry.seq, message: `the personal value ${hash} was rewritten` });
  });
});
