import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { EXPENSES, seedExpenses, startTestServer, tokenRequest, type TestServer } from '../helpers/server.ts';

const cc = (t: TestServer, creds: [string, string]) => tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, creds);

describe('token endpoint rate limits: the per-client budget', () => {
  let t: TestServer;
  beforeAll(async () => { t = await startTestServer({ rate_limits: { token: { burst: 5, per_second: 0.2 } } }); });
  afterAll(async () => { await t?.stop(); });

  it('limits an authenticated client, answering 429 slow_down with Retry-After', async () => {
    const { clientId, secret } = await seedExpenses(t);
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 8; i++) {
      const res = await cc(t, [clientId, secret]);
      statuses.push(res.status);
      if (res.status === 429) limited ??= res;
      else await res.body?.cancel();
    }
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(limited).toBeDefined();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited!.json()).toMatchObject({ error: 'slow_down' });
  });

  it('holds each client to its own budget: other agents behind the same address still get tokens', async () => {
    const { clientId, secret } = await seedExpenses(t, 'busy-agent');
    const quiet = await seedExpenses(t, 'quiet-agent');
    for (let i = 0; i < 6; i++) await (await cc(t, [clientId, secret])).body?.cancel();
    expect((await cc(t, [clientId, secret])).status).toBe(429);
    // Same address (this test), another client: its own budget is untouched.
    for (let i = 0; i < 5; i++) expect((await cc(t, [quiet.clientId, quiet.secret])).status).toBe(200);
  });
});

describe('token endpoint rate limits: the per-address guard', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ rate_limits: { token: { burst: 1000, per_second: 1000 }, token_per_address: { burst: 4, per_second: 0.1 } } });
  });
  afterAll(async () => { await t?.stop(); });

  it('refuses an address over its guard before any client authenticates, whatever client it names', async () => {
    const a = await seedExpenses(t, 'agent-a');
    const b = await seedExpenses(t, 'agent-b');
    const statuses: number[] = [];
    for (const creds of [[a.clientId, a.secret], [b.clientId, b.secret], [a.clientId, 'wrong'], ['nobody', 'x'], [b.clientId, b.secret]] as Array<[string, string]>) {
      const res = await cc(t, creds);
      statuses.push(res.status);
      if (res.status === 429) {
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(await res.json()).toMatchObject({ error: 'slow_down' });
      } else await res.body?.cancel();
    }
    expect(statuses).toEqual([200, 200, 401, 401, 429]);
    const introspection = await fetch(`${t.url}/token/introspection`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x' });
    expect(introspection.status).toBe(429);
  });
});

describe('token endpoint rate limit defaults', () => {
  it('make the per-client budget the control and size the per-address guard for many agents on one address', () => {
    const { rateLimits } = loadConfig('development', {});
    expect(rateLimits.token).toEqual({ burst: 200, per_second: 100 });
    expect(rateLimits.tokenPerAddress).toEqual({ burst: 2000, per_second: 1000 });
    // An address carries at least ten clients at their full budget before its guard bites.
    expect(rateLimits.tokenPerAddress.per_second).toBeGreaterThanOrEqual(10 * rateLimits.token.per_second);
  });
});
