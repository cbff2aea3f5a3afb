import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, EXPENSES, onPostgres, startSeededServer, type TestServer, tokenRequest } from '../helpers/server.ts';

let t: TestServer;
let creds: [string, string];
beforeAll(async () => { ({ t, creds } = await startSeededServer()); });
afterAll(async () => { await t?.stop(); });

function dbName(): string {
  return new URL(t.env.DATABASE_URL!).pathname.slice(1);
}

/** Takes the database away: on PostgreSQL for real (connections refused and cut), on PGlite by closing it. */
async function takeDatabaseAway(): Promise<void> {
  if (onPostgres) {
    await adminQuery(`ALTER DATABASE ${dbName()} ALLOW_CONNECTIONS false`);
    await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${dbName()}'`);
  } else {
    await t.server.db.destroy();
  }
}

describe('storage unavailable: fail closed', () => {
  it('answers 503 temporarily_unavailable with Retry-After, never a token', async () => {
    const issued = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, creds);
    expect(issued.status).toBe(200);
    const { access_token: token } = await issued.json() as { access_token: string };
    // A resource server that introspects: its liveness lookup is a named statement outside knex (src/store/prepared.ts).
    const created = await t.admin('POST', '/admin/api/clients', { client_id: 'expenses-rs', resource_server: EXPENSES });
    const { client_secret: rsSecret } = await created.json() as { client_secret: string };
    const introspect = () => fetch(`${t.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`expenses-rs:${rsSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token }),
    });
    expect(await (await introspect()).json()).toMatchObject({ active: true });
    await takeDatabaseAway();

    const unavailable = await introspect();
    expect(unavailable.status).toBe(503);
    expect(await unavailable.json()).toMatchObject({ error: 'temporarily_unavailable' });

    const res = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, creds);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const body = await res.json() as Record<string, unknown>;
    expect(body).toMatchObject({ error: 'temporarily_unavailable' });
    expect(body).not.toHaveProperty('access_token');

    const admin = await t.admin('GET', '/admin/api/clients');
    expect(admin.status).toBe(503);
    expect(await admin.json()).toMatchObject({ error: 'temporarily_unavailable' });

    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).toBe(503);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });

  it.skipIf(!onPostgres)('recovers when the database returns (PostgreSQL only: PGlite cannot be brought back in-process)', async () => {
    await adminQuery(`ALTER DATABASE ${dbName()} ALLOW_CONNECTIONS true`);
    const res = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, creds);
    expect(res.status).toBe(200);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
  });
});
