import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
beforeAll(async () => { t = await startTestServer(); });
afterAll(async () => { await t?.stop(); });

const HR = 'https://hr.example/api';

describe('resources', () => {
  it('creates with labelled scopes, updates, lists and deletes', async () => {
    const res = await t.admin('POST', '/admin/api/resources', {
      identifier: HR, name: 'HR documents', scopes: [{ name: 'hr:read', sensitivity: 'restricted', operation: 'read' }], access_token_ttl: 120,
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ identifier: HR, access_token_ttl: 120, scopes: [{ name: 'hr:read', sensitivity: 'restricted', operation: 'read' }] });
    const got = await t.admin('GET', `/admin/api/resources/${encodeURIComponent(HR)}`);
    expect(got.status).toBe(200);
    const patched = await t.admin('PATCH', `/admin/api/resources/${encodeURIComponent(HR)}`, { name: 'HR' });
    expect(await patched.json()).toMatchObject({ name: 'HR' });
    const list = await (await t.admin('GET', '/admin/api/resources')).json() as { items: unknown[]; next_cursor: null };
    expect(list.items).toHaveLength(1);
    expect(list.next_cursor).toBeNull();
    expect((await t.admin('DELETE', `/admin/api/resources/${encodeURIComponent(HR)}`)).status).toBe(204);
    expect((await t.admin('GET', `/admin/api/resources/${encodeURIComponent(HR)}`)).status).toBe(404);
  });

  it.each([
    [{ identifier: 'not a uri', name: 'x', scopes: [] }, 'identifier'],
    [{ identifier: 'https://x.example#frag', name: 'x', scopes: [] }, 'identifier'],
    [{ identifier: 'ftp://x.example', name: 'x', scopes: [] }, 'identifier'],
    [{ identifier: 'https://x.example', name: 'x', scopes: [{ name: 's', sensitivity: 'secret', operation: 'read' }] }, 'scopes.0.sensitivity'],
    [{ identifier: 'https://x.example', name: 'x', scopes: [{ name: 's', sensitivity: 'public', operation: 'read' }, { name: 's', sensitivity: 'public', operation: 'write' }] }, 'scopes.1.name'],
    [{ identifier: 'https://x.example', name: 'x', scopes: [], access_token_ttl: 5 }, 'access_token_ttl'],
    [{ identifier: 'https://x.example', name: 'x', scopes: [], owner: 'me' }, 'owner'],
    [{ identifier: 'https://x.example', scopes: [] }, 'name'],
  ])('refuses %j naming %s', async (body, field) => {
    const res = await t.admin('POST', '/admin/api/resources', body);
    expect(res.status).toBe(400);
    const err = await res.json() as Record<string, unknown>;
    expect(err).toMatchObject({ error: 'invalid_request', field });
    expect(typeof err.error_description).toBe('string');
  });
});

describe('trusted issuers', () => {
  const jwk = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'idp-1' };

  it('creates with inline keys and defaults, updates, deletes', async () => {
    const res = await t.admin('POST', '/admin/api/issuers', { issuer: 'https://idp.example', jwks: { keys: [jwk] }, audiences: ['intentgate'] });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ issuer: 'https://idp.example', typs: ['JWT', 'at+jwt'], scope_claim: 'scope', algorithms: ['RS256', 'ES256'], jwks_uri: null });
    const patched = await t.admin('PATCH', `/admin/api/issuers/${encodeURIComponent('https://idp.example')}`, { scope_claim: 'scp', typs: ['at+jwt'] });
    expect(await patched.json()).toMatchObject({ scope_claim: 'scp', typs: ['at+jwt'] });
    const dup = await t.admin('POST', '/admin/api/issuers', { issuer: 'https://idp.example', jwks_uri: 'https://idp.example/jwks', audiences: ['x'] });
    expect(dup.status).toBe(409);
    expect((await t.admin('DELETE', `/admin/api/issuers/${encodeURIComponent('https://idp.example')}`)).status).toBe(204);
  });

  it.each([
    [{ issuer: 'https://a.example', audiences: ['x'] }, 'jwks'],
    [{ issuer: 'https://a.example', audiences: ['x'], jwks: { keys: [jwk] }, jwks_uri: 'https://a.example/jwks' }, 'jwks_uri'],
    [{ issuer: 'https://a.example', audiences: ['x'], jwks_uri: 'https://a.example/jwks', algorithms: ['HS256'] }, 'algorithms.0'],
    [{ issuer: 'https://a.example', audiences: ['x'], jwks_uri: 'https://a.example/jwks', algorithms: ['none'] }, 'algorithms.0'],
    [{ issuer: 'https://a.example', jwks_uri: 'https://a.example/jwks' }, 'audiences'],
    [{ issuer: 'https://a.example', audiences: ['x'], jwks_uri: 'https://a.example/jwks', scope_claim: 'roles' }, 'scope_claim'],
    [{ issuer: 'https://a.example', audiences: ['x'], jwks: { keys: [{ ...jwk, x: 'bad' }] } }, 'jwks.keys.0'],
  ])('refuses %j naming %s', async (body, field) => {
    const res = await t.admin('POST', '/admin/api/issuers', body);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', field });
  });
});
