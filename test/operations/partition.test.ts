import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPENSES, freePort, onPostgres, seedExpenses, startTestServer, tokenRequest, type TestServer } from '../helpers/server.ts';

/**
 * A TCP proxy in front of PostgreSQL that can go silent the way a network partition does: connections stay
 * open, nothing is refused or reset, bytes simply stop arriving (and arrive late once it heals, as TCP
 * retransmission would deliver them).
 */
async function partitionableProxy(target: number): Promise<{ port: number; partition(on: boolean): void; close(): Promise<void> }> {
  let silent = false;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    if (silent) { client.pause(); upstream.pause(); }
    const end = () => { client.destroy(); upstream.destroy(); pairs.delete(pair); };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    partition(on) {
      silent = on;
      for (const [a, b] of pairs) {
        if (on) { a.pause(); b.pause(); } else { a.resume(); b.resume(); }
      }
    },
    close: () => new Promise<void>((r) => {
      for (const [a, b] of pairs) { a.destroy(); b.destroy(); }
      server.close(() => r());
    }),
  };
}

describe.skipIf(!onPostgres)('a network partition from PostgreSQL (PostgreSQL only)', () => {
  let proxy: Awaited<ReturnType<typeof partitionableProxy>>;
  let t: TestServer;
  let creds: [string, string];
  beforeAll(async () => {
    proxy = await partitionableProxy(Number(new URL(process.env.DATABASE_URL!).port || 5432));
    t = await startTestServer({}, {}, { databaseUrl: (url) => { const u = new URL(url); u.host = `127.0.0.1:${proxy.port}`; return u.toString(); } });
    const seeded = await seedExpenses(t);
    creds = [seeded.clientId, seeded.secret];
  });
  afterAll(async () => {
    proxy?.partition(false);
    await t?.stop();
    await proxy?.close();
  });

  it('answers every request 503 with Retry-After, never 500 and never a hang, then recovers when it heals', async () => {
    expect((await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, creds)).status).toBe(200);
    proxy.partition(true);
    try {
      const answers = await Promise.all([
        ...Array.from({ length: 6 }, () => tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, creds)),
        t.admin('GET', '/admin/api/clients'),
      ]);
      for (const res of answers) {
        expect(res.status, await res.clone().text()).toBe(503);
        expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(await res.json()).toMatchObject({ error: 'temporarily_unavailable' });
      }
    } finally {
      proxy.partition(false);
    }
    // Late bytes arrive in order once it heals: the pool's connections are usable again, no restart needed.
    let status = 0;
    for (let i = 0; i < 80 && status !== 200; i++) {
      status = (await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, creds)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 500));
    }
    expect(status).toBe(200);
  }, 120_000);
});
