import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPENSES, seedExpenses, startTestServer, tokenRequest, type TestServer } from '../helpers/server.ts';

let t: TestServer;
beforeAll(async () => { t = await startTestServer({ rate_limits: { token: { burst: 5, per_second: 0.2 } } }); });
afterAll(async () => { await t?.stop(); });

describe('token endpoint rate limits', () => {
  it('limits an authenticated client, answering 429 slow_down with Retry-After', async () => {
    const { clientId, secret } = await seedExpenses(t);
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 8; i++) {
      const res = await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, [clientId, secret]);
      statuses.push(res.status);
      if (res.status === 429) limited ??= res;
      else await res.body?.cancel();
    }
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(limited).toBeDefined();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited!.json()).toMatchObject({ error: 'slow_down' });
  });
});
