import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { freePort, onPostgres, tokenRequest } from '../helpers/server.ts';
import { exchangeParams, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';

// Each process holds the agent holds in memory (src/tasks/holds.ts). A hold placed by one instance (a
// behaviour counter that tripped) must be in force on another, heard by NOTIFY; and so must its lifting.

vi.setConfig({ testTimeout: 180_000 });

async function until(probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await probe()) return Math.round(performance.now() - started);
    if (performance.now() - started > timeoutMs) throw new Error(`the change was not in force after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!onPostgres)('agent holds across two instances on one database (PostgreSQL only; PGlite has one process)', () => {
  const policy = { file: path.resolve('test/fixtures/policy/agent_counters.yaml') };
  const rateLimits = { token: { burst: 100_000, per_second: 100_000 } };
  let w: World;
  let second: RunningServer;
  let reviewerToken: string;
  beforeAll(async () => {
    w = await startWorld({ policy, rate_limits: rateLimits });
    const port = await freePort();
    second = await startServer(loadConfig('development', { ...w.t.env, PORT: String(port), ISSUER: `http://127.0.0.1:${port}` }, {
      policy, development_issuer: false, rate_limits: rateLimits,
    }));
    reviewerToken = ((await (await w.t.admin('POST', '/admin/api/admins', { name: 'rita', role: 'reviewer', user: { issuer: 'https://idp.test', sub: 'rita' } })).json()) as { token: string }).token;
  }, 180_000);
  afterAll(async () => {
    await second?.close();
    await w?.t.stop();
  });

  it('a suspension on one instance is in force on the other, and so is its lifting', async (ctx) => {
    const onSecond = async (sub: string) => tokenRequest(second.url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken({ sub })) }, w.creds.agent);
    expect((await onSecond('una')).status).toBe(200);

    // Three refusals on the first instance suspend the agent for una (the per-agent counter).
    for (let i = 0; i < 3; i++) {
      const refused = await w.exchange('agent', exchangeParams(await w.userToken({ sub: 'una' }), { scope: 'expenses:submit' }));
      expect(refused.status).toBe(400);
    }
    const held = await w.exchange('agent', exchangeParams(await w.userToken({ sub: 'una' })));
    const { review_id: reviewId, reasons } = await held.json() as { review_id: string; reasons: string[] };
    expect(reasons).toEqual(['agent_suspended']);

    const delays: Record<string, number> = {};
    delays.suspended = await until(async () => {
      const r = await onSecond('una');
      return r.status === 400 && ((await r.json()) as { reasons?: string[] }).reasons?.[0] === 'agent_suspended';
    });
    // Only this agent, only for this user.
    expect((await onSecond('val')).status).toBe(200);

    expect((await w.t.admin('POST', `/admin/api/reviews/${reviewId}/approve`, { comment: 'fine' }, reviewerToken)).status).toBe(200);
    delays.lifted = await until(async () => (await onSecond('una')).status === 200);

    ctx.annotate(`agent hold → in force on the other instance, ms: ${JSON.stringify(delays)}`);
    process.stderr.write(`agent hold propagation delays (ms): ${JSON.stringify(delays)}\n`);
  });
});
