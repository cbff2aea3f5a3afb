import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_TOKEN_TYPE, details, EXPENSES, exchangeParams, startWorld, type World } from '../helpers/world.ts';
import { lastEntry } from '../helpers/ledger.ts';

let w: World;
beforeAll(async () => { w = await startWorld(); });
afterAll(async () => { await w?.t.stop(); });

describe('token exchange: the happy path', () => {
  it('trades a user token and an intent for a down-scoped, audience-bound RFC 9068 token', async () => {
    const subject = await w.userToken();
    const res = await w.exchange('agent', exchangeParams(subject));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const body = await res.json() as Record<string, unknown>;
    expect(body).toMatchObject({ issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', scope: 'expenses:read', expires_in: 300 });
    expect(body).not.toHaveProperty('refresh_token');
    const { payload, protectedHeader } = await jwtVerify(body.access_token as string, createRemoteJWKSet(new URL(`${w.t.url}/jwks`)), {
      issuer: w.t.issuer, audience: EXPENSES, typ: 'at+jwt', algorithms: ['ES256'], requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id', 'scope', 'act', 'task'],
    });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({ sub: 'alice', aud: EXPENSES, client_id: 'agent', scope: 'expenses:read', act: { sub: 'agent' } });
    expect(payload.task).toMatch(/^tsk_/);

    const row = await w.t.server.db('issued_tokens').where({ jti: payload.jti }).first();
    expect(row).toMatchObject({ client_id: 'agent', subject: 'alice', subject_issuer: 'https://idp.test', audience: EXPENSES, status: 'active', task: payload.task });
    const entry = await lastEntry(w.t.server.db, 'exchange.granted');
    expect(entry.payload).toMatchObject({
      jti: payload.jti, intent: 'List the open expense reports for the weekly summary', granted_scope: ['expenses:read'], matched_rules: ['expenses-read'], policy_version: '1',
      user: { issuer: 'https://idp.test', sub: 'alice' },
    });
  });

  it('grants and returns authorization_details the policy matched, with the rule TTL', async () => {
    const d = details('approve', { type: 'Expense', id: 'exp_42', amount: 120 }, 'expense_approval');
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { scope: 'expenses:approve', authorization_details: d }));
    expect(res.status).toBe(200);
    const body = await res.json() as Record<string, unknown>;
    expect(body.authorization_details).toEqual(JSON.parse(d));
    expect(body.expires_in).toBe(120);
    expect(decodeJwt(body.access_token as string).authorization_details).toEqual(JSON.parse(d));
  });

  it('gives the policy default when no scope is asked, never more than the subject has', async () => {
    const subject = await w.userToken({ scope: 'expenses:read' });
    const params = exchangeParams(subject);
    delete params.scope;
    const res = await w.exchange('agent', params);
    const body = await res.json() as Record<string, unknown>;
    expect(res.status).toBe(200);
    expect(body.scope).toBe('expenses:read');
  });

  it('never outlives the subject token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await w.exchange('agent', exchangeParams(await w.userToken({ exp: now + 45 })));
    const body = await res.json() as { expires_in: number; access_token: string };
    expect(body.expires_in).toBeLessThanOrEqual(45);
    expect(decodeJwt(body.access_token).exp).toBeLessThanOrEqual(now + 45);
  });

  it('accepts requested_token_type jwt and still answers token_type Bearer', async () => {
    const res = await w.exchange('agent', exchangeParams(await w.userToken(), { requested_token_type: 'urn:ietf:params:oauth:token-type:jwt' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ token_type: 'Bearer', issued_token_type: ACCESS_TOKEN_TYPE });
  });
});
