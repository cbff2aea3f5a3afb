import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPENSES, seedExpenses, startTestServer, tokenRequest, type TestServer } from '../helpers/server.ts';

let t: TestServer;
beforeAll(async () => { t = await startTestServer(); });
afterAll(async () => { await t?.stop(); });

describe('/metrics', () => {
  it('exposes requests, grant outcomes, latency and pool use in Prometheus format', async () => {
    const { clientId, secret } = await seedExpenses(t);
    await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, [clientId, secret]);
    await tokenRequest(t.url, { grant_type: 'client_credentials', resource: EXPENSES }, [clientId, 'wrong']);
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/intentgate_grants_total\{grant_type="client_credentials",outcome="granted"\} 1/);
    expect(text).toMatch(/intentgate_grants_total\{grant_type="client_credentials",outcome="invalid_client"\} 1/);
    expect(text).toMatch(/intentgate_http_requests_total\{method="POST",route="\/token",status="200"\} 1/);
    expect(text).toMatch(/intentgate_http_request_duration_seconds_bucket\{le="0\.1",method="POST",route="\/token"\} \d+/);
    expect(text).toContain('intentgate_db_pool_used');
    expect(text).toContain('intentgate_process_');
    // Secrets never appear, and user-controlled paths do not create series.
    expect(text).not.toContain(secret);
    await fetch(`${t.url}/some/random/path`);
    expect(await (await fetch(`${t.url}/metrics`)).text()).not.toContain('/some/random/path');
  });
});
