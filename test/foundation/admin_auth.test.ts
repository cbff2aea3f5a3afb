import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { lastEntry } from '../helpers/ledger.ts';

let t: TestServer;
beforeAll(async () => { t = await startTestServer({ rate_limits: { admin: { burst: 40, per_second: 0.5 } } }); });
afterAll(async () => { await t?.stop(); });

describe('admin authentication', () => {
  it('refuses a request without a token', async () => {
    const res = await fetch(`${t.url}/admin/api/clients`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('Bearer');
    expect(await res.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('refuses a wrong token and a malformed header', async () => {
    expect((await t.admin('GET', '/admin/api/clients', undefined, 'not-the-token')).status).toBe(401);
    const basic = await fetch(`${t.url}/admin/api/clients`, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    expect(basic.status).toBe(401);
  });

  it('issues named credentials that work until revoked, and records who acted', async () => {
    const created = await t.admin('POST', '/admin/api/admins', { name: 'alice' });
    expect(created.status).toBe(201);
    const alice = await created.json() as { id: string; token: string; name: string };
    expect(alice.name).toBe('alice');
    expect(alice.token).toMatch(/^iga_/);

    const asAlice = await t.admin('POST', '/admin/api/resources', { identifier: 'https://a.example', name: 'A', scopes: [] }, alice.token);
    expect(asAlice.status).toBe(201);
    const entry = await lastEntry(t.server.db, 'admin.resource.created');
    expect(entry.actor).toBe(alice.id);

    const list = await t.admin('GET', '/admin/api/admins');
    const { items } = await list.json() as { items: Array<Record<string, unknown>> };
    expect(items.map((a) => a.name)).toContain('alice');
    expect(JSON.stringify(items)).not.toContain(alice.token);

    expect((await t.admin('DELETE', `/admin/api/admins/${alice.id}`)).status).toBe(204);
    const after = await t.admin('GET', '/admin/api/clients', undefined, alice.token);
    expect(after.status).toBe(401);
    expect((await t.admin('DELETE', '/admin/api/admins/adm_nope')).status).toBe(404);
  });

  it('refuses to revoke the last live admin credential', async () => {
    const { items } = await (await t.admin('GET', '/admin/api/admins')).json() as { items: Array<{ id: string; revoked_at: string | null }> };
    const live = items.filter((a) => !a.revoked_at);
    expect(live).toHaveLength(1);
    const res = await t.admin('DELETE', `/admin/api/admins/${live[0]!.id}`);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: 'conflict' });
  });

  it('the bootstrap credential is an unbound admin; the last admin-role credential is neither revoked nor demoted', async () => {
    const { items } = await (await t.admin('GET', '/admin/api/admins')).json() as { items: Array<{ id: string; role: string; user: unknown; created_by: string; revoked_at: string | null }> };
    const live = items.filter((a) => !a.revoked_at);
    expect(live).toEqual([expect.objectContaining({ role: 'admin', user: null, created_by: 'system' })]);
    const bootstrap = live[0]!.id;
    const auditor = await (await t.admin('POST', '/admin/api/admins', { name: 'aud', role: 'auditor' })).json() as { id: string; token: string };
    // Another live credential exists, but it could not manage the others.
    expect((await t.admin('PATCH', `/admin/api/admins/${bootstrap}`, { role: 'auditor' })).status).toBe(409);
    expect((await t.admin('DELETE', `/admin/api/admins/${bootstrap}`)).status).toBe(409);
    expect((await t.admin('PATCH', `/admin/api/admins/${auditor.id}`, { role: 'admin' })).status).toBe(200);
    expect((await t.admin('PATCH', `/admin/api/admins/${bootstrap}`, { role: 'auditor' })).status).toBe(200);
    const refused = await t.admin('POST', '/admin/api/admins', { name: 'x' });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: 'access_denied' });
    expect((await t.admin('PATCH', `/admin/api/admins/${bootstrap}`, { role: 'admin' }, auditor.token)).status).toBe(200);
  });

  it('rate limits with 429 and Retry-After', async () => {
    let limited: Response | undefined;
    for (let i = 0; i < 60 && !limited; i++) {
      const res = await fetch(`${t.url}/admin/api/clients`);
      if (res.status === 429) limited = res;
    }
    expect(limited).toBeDefined();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited!.json()).toMatchObject({ error: 'slow_down' });
  });
});
