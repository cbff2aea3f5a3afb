import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPENSES, seedExpenses, startTestServer, tokenRequest, type TestServer } from '../helpers/server.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
  await seedExpenses(t, 'seed');
});
afterAll(async () => { await t?.stop(); });

describe('clients', () => {
  it('creates, reads, updates and deletes a client; the secret is shown only at creation', async () => {
    const res = await t.admin('POST', '/admin/api/clients', { client_name: 'Reporting', scope: 'expenses:read', grant_types: ['client_credentials'] });
    expect(res.status).toBe(201);
    const created = await res.json() as Record<string, unknown>;
    expect(created.client_id).toMatch(/^c_/);
    expect(typeof created.client_secret).toBe('string');
    expect(created).toMatchObject({ client_name: 'Reporting', token_endpoint_auth_method: 'client_secret_basic', client_secret_expires_at: 0 });
    const id = created.client_id as string;

    const got = await (await t.admin('GET', `/admin/api/clients/${id}`)).json() as Record<string, unknown>;
    expect(got).not.toHaveProperty('client_secret');
    expect(got.client_name).toBe('Reporting');
    const row = await t.server.db('clients').where({ client_id: id }).first();
    expect(row.secret_enc).not.toContain(created.client_secret as string);

    const patched = await t.admin('PATCH', `/admin/api/clients/${id}`, { client_name: 'Reports' });
    expect(patched.status).toBe(200);
    expect((await patched.json() as Record<string, unknown>).client_name).toBe('Reports');

    expect((await t.admin('DELETE', `/admin/api/clients/${id}`)).status).toBe(204);
    expect((await t.admin('GET', `/admin/api/clients/${id}`)).status).toBe(404);
    expect((await t.admin('DELETE', `/admin/api/clients/${id}`)).status).toBe(404);
    const denied = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, [id, created.client_secret as string]);
    expect(denied.status).toBe(401);
  });

  it('rotates a secret: the old one stops working, the new one works', async () => {
    const { clientId, secret } = await seedExpenses(t, 'rotating');
    const rotated = await t.admin('POST', `/admin/api/clients/${clientId}/secret`);
    expect(rotated.status).toBe(200);
    const { client_secret: fresh } = await rotated.json() as { client_secret: string };
    expect(fresh).not.toBe(secret);
    expect((await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, [clientId, secret])).status).toBe(401);
    expect((await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, [clientId, fresh])).status).toBe(200);
  });

  it('refuses a duplicate client_id with 409 naming the field', async () => {
    const res = await t.admin('POST', '/admin/api/clients', { client_id: 'seed' });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: 'conflict', field: 'client_id' });
  });

  it('paginates lists with next_cursor', async () => {
    for (const n of ['p1', 'p2', 'p3']) expect((await t.admin('POST', '/admin/api/clients', { client_id: `page-${n}` })).status).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await t.admin('GET', `/admin/api/clients?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      const page = await res.json() as { items: Array<{ client_id: string }>; next_cursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((c) => c.client_id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining(['page-p1', 'page-p2', 'page-p3', 'seed']));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('filters by grant type', async () => {
    const res = await t.admin('GET', '/admin/api/clients?grant_type=client_credentials&limit=200');
    const { items } = await res.json() as { items: unknown[] };
    expect(items.length).toBeGreaterThan(0);
    const none = await (await t.admin('GET', '/admin/api/clients?grant_type=password')).json() as { items: unknown[] };
    expect(none.items).toEqual([]);
  });

  it('authenticates a private_key_jwt client through openid-client', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const res = await t.admin('POST', '/admin/api/clients', {
      client_id: 'pkjwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, scope: 'expenses:read',
    });
    expect(res.status).toBe(201);
    expect(await res.json()).not.toHaveProperty('client_secret');

    const config = await oidc.discovery(new URL(t.issuer), 'pkjwt', {}, oidc.PrivateKeyJwt({ key: privateKey, kid: 'k1' }), { execute: [oidc.allowInsecureRequests] });
    const tokens = await oidc.clientCredentialsGrant(config, { resource: EXPENSES, scope: 'expenses:read' });
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('expenses:read');

    const wrongKey = (await generateKeyPair('ES256')).privateKey;
    const bad = await oidc.discovery(new URL(t.issuer), 'pkjwt', {}, oidc.PrivateKeyJwt({ key: wrongKey, kid: 'k1' }), { execute: [oidc.allowInsecureRequests] });
    // A failed client authentication is a 401 challenge (RFC 6749 §5.2), whatever the method.
    await expect(oidc.clientCredentialsGrant(bad, { resource: EXPENSES })).rejects.toMatchObject({
      status: 401, cause: [{ scheme: 'basic', parameters: { error: 'invalid_client' } }],
    });
  });

  it('refuses private_key_jwt without keys, private key material, and unknown resource servers', async () => {
    const noKeys = await t.admin('POST', '/admin/api/clients', { token_endpoint_auth_method: 'private_key_jwt' });
    expect(noKeys.status).toBe(400);
    expect(await noKeys.json()).toMatchObject({ field: 'jwks' });

    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const leaked = await t.admin('POST', '/admin/api/clients', { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [await exportJWK(privateKey)] } });
    expect(leaked.status).toBe(400);
    expect(await leaked.json()).toMatchObject({ field: 'jwks.keys.0' });

    const rs = await t.admin('POST', '/admin/api/clients', { resource_server: 'https://nowhere.example' });
    expect(rs.status).toBe(400);
    expect(await rs.json()).toMatchObject({ field: 'resource_server' });

    const ok = await t.admin('POST', '/admin/api/clients', { client_id: 'expenses-rs', resource_server: EXPENSES });
    expect(ok.status).toBe(201);
    const inUse = await t.admin('DELETE', `/admin/api/resources/${encodeURIComponent(EXPENSES)}`);
    expect(inUse.status).toBe(409);
  });
});
