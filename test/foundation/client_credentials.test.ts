import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPENSES, startSeededServer, type TestServer, tokenRequest } from '../helpers/server.ts';
import { lastEntry } from '../helpers/ledger.ts';

let t: TestServer;
let creds: [string, string];
beforeAll(async () => { ({ t, creds } = await startSeededServer()); });
afterAll(async () => { await t?.stop(); });

describe('client_credentials', () => {
  it('issues an RFC 9068 JWT that verifies against /jwks', async () => {
    const res = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }, creds);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const body = await res.json() as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: 'Bearer', scope: 'expenses:read', expires_in: 300 });
    expect(body).not.toHaveProperty('refresh_token');
    const jwks = createRemoteJWKSet(new URL(`${t.url}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(body.access_token as string, jwks, {
      issuer: t.issuer, audience: EXPENSES, typ: 'at+jwt', algorithms: ['ES256'], requiredClaims: ['exp', 'iat', 'jti'],
    });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({ client_id: 'svc', sub: 'svc', scope: 'expenses:read' });
    expect(payload.exp! - payload.iat!).toBe(300);

    const row = await t.server.db('issued_tokens').where({ jti: payload.jti }).first();
    expect(row).toMatchObject({ client_id: 'svc', audience: EXPENSES, status: 'active', grant_type: 'client_credentials' });
    const entry = await lastEntry(t.server.db, 'token.issued');
    expect(entry.payload.jti).toBe(payload.jti);
  });

  it('caps the lifetime at the resource access_token_ttl', async () => {
    const patched = await t.admin('PATCH', `/admin/api/resources/${encodeURIComponent(EXPENSES)}`, { access_token_ttl: 60 });
    expect(patched.status).toBe(200);
    const res = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, creds);
    const body = await res.json() as { expires_in: number; scope?: string; access_token: string };
    expect(body.expires_in).toBe(60);
    expect(decodeProtectedHeader(body.access_token).typ).toBe('at+jwt');
    await t.admin('PATCH', `/admin/api/resources/${encodeURIComponent(EXPENSES)}`, { access_token_ttl: null });
  });

  it('requires a resource', async () => {
    const res = await tokenRequest(t.url, { grant_type: 'client_credentials' }, creds);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_target' });
  });

  it('refuses an unknown or a second resource', async () => {
    const unknown = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: 'https://unknown.example' }, creds);
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: 'invalid_target' });
    const two = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: [EXPENSES, 'https://other.example'] }, creds);
    expect(two.status).toBe(400);
    expect(await two.json()).toMatchObject({ error: 'invalid_target' });
  });

  it('refuses scope beyond what the client may have, never granting silently less', async () => {
    const res = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read expenses:write' }, creds);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_scope' });
  });

  it('answers bad client authentication with 401 invalid_client', async () => {
    const res = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, ['svc', 'wrong']);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_client' });
    const none = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('answers malformed, duplicated and oversized token requests with invalid_request', async () => {
    const dup = await tokenRequest(t.url, { grant_type: ['client_credentials', 'client_credentials'], resource: EXPENSES }, creds);
    expect(dup.status).toBe(400);
    expect(await dup.json()).toMatchObject({ error: 'invalid_request' });

    const huge = await fetch(`${t.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&x=${'a'.repeat(200_000)}`,
    });
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ error: 'invalid_request' });

    const json = await fetch(`${t.url}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' });
    expect(json.status).toBeGreaterThanOrEqual(400);
    expect(json.status).toBeLessThan(500);

    const unsupported = await tokenRequest(t.url, { grant_type: 'password', resource: EXPENSES }, creds);
    expect(unsupported.status).toBe(400);
    expect(await unsupported.json()).toMatchObject({ error: 'unsupported_grant_type' });
  });
});
