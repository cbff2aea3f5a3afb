import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDb, type Db } from '../../src/store/db.ts';
import { LISTENER_NAME } from '../../src/store/notify.ts';
import { startCli } from '../helpers/cli.ts';
import { freePort, onPostgres, tokenRequest } from '../helpers/server.ts';
import { exchangeParams, startWorld, TOKEN_EXCHANGE, type World } from '../helpers/world.ts';
import { until } from '../helpers/until.ts';

// Each process holds the agent holds in memory (src/tasks/holds.ts). A hold placed by one instance (a
// behaviour counter that tripped) must be in force on another, which runs in a process of its own (so it
// hears only by NOTIFY); and so must its lifting. And a copy that has not heard (its notification
// connection frozen) must never let a token be minted for a held agent: the group commit re-checks.

vi.setConfig({ testTimeout: 180_000 });

describe.skipIf(!onPostgres)('agent holds across two instances (processes) on one database (PostgreSQL only; PGlite has one process)', () => {
  const policy = path.resolve('test/fixtures/policy/agent_counters.yaml');
  const rateLimits = { token: { burst: 100_000, per_second: 100_000 } };
  let w: World;
  let second: ReturnType<typeof startCli> & { url: string };
  let db: Db;
  let reviewerToken: string;
  /** The first instance's notification connection(s) (this process). */
  let firstListeners: Set<number>;
  beforeAll(async () => {
    w = await startWorld({ policy: { file: policy }, rate_limits: rateLimits });
    db = createDb({ databaseUrl: w.t.env.DATABASE_URL, dataDir: w.t.env.DATA_DIR!, poolMax: 2 });
    firstListeners = new Set([await listenerOtherThan(new Set())]);
    const configFile = path.join(w.t.env.DATA_DIR!, 'second.yaml');
    const config = YAML.parse(readFileSync('config/default.yaml', 'utf8')) as Record<string, unknown>;
    Object.assign(config, { policy: { file: policy }, development_issuer: false, rate_limits: { ...(config.rate_limits as object), ...rateLimits } });
    writeFileSync(configFile, YAML.stringify(config));
    const port = await freePort();
    const proc = startCli(['start-dev'], { ...w.t.env, PORT: String(port), ISSUER: `http://127.0.0.1:${port}`, INTENTGATE_CONFIG: configFile, LOG_LEVEL: 'warn' }, /listening: /);
    await proc.started;
    second = { ...proc, url: `http://127.0.0.1:${port}` };
    reviewerToken = ((await (await w.t.admin('POST', '/admin/api/admins', { name: 'rita', role: 'reviewer', user: { issuer: 'https://idp.test', sub: 'rita' } })).json()) as { token: string }).token;
  }, 180_000);
  afterAll(async () => {
    if (second && second.child.exitCode === null && second.child.signalCode === null) second.child.kill('SIGTERM');
    await second?.exited;
    await db?.destroy();
    await w?.t.stop();
  }, 60_000);

  const onSecond = async (sub: string) => tokenRequest(second.url, { grant_type: TOKEN_EXCHANGE, ...exchangeParams(await w.userToken({ sub })) }, w.creds.agent);
  const reasonsOf = async (r: Response) => ((await r.json()) as { reasons?: string[] }).reasons;
  /** Three refusals on the first instance suspend the agent for `sub` (the per-agent counter); the review that holds it. */
  const suspendOnFirst = async (sub: string) => {
    for (let i = 0; i < 3; i++) {
      const refused = await w.exchange('agent', exchangeParams(await w.userToken({ sub }), { scope: 'expenses:submit' }));
      expect(refused.status).toBe(400);
    }
    const held = await w.exchange('agent', exchangeParams(await w.userToken({ sub })));
    const { review_id: reviewId, reasons } = await held.json() as { review_id: string; reasons: string[] };
    expect(reasons).toEqual(['agent_suspended']);
    return reviewId;
  };
  /** A notification connection not in `known`: its server process, found by its application_name. */
  const listenerOtherThan = async (known: Set<number>): Promise<number> => {
    let pid: number | undefined;
    await until(async () => {
      const { rows } = await db.raw('select pid from pg_stat_activity where application_name = ? and datname = current_database()', [LISTENER_NAME]) as { rows: Array<{ pid: number }> };
      pid = rows.map((r) => r.pid).find((p) => !known.has(p));
      return pid !== undefined;
    });
    return pid!;
  };

  it('a suspension on one instance is in force on the other, and its lifting is heard by NOTIFY', async (ctx) => {
    expect((await onSecond('una')).status).toBe(200);
    const reviewId = await suspendOnFirst('una');

    const delays: Record<string, number> = {};
    delays.suspended = await until(async () => {
      const r = await onSecond('una');
      return r.status === 400 && (await reasonsOf(r))?.[0] === 'agent_suspended';
    });
    // Only this agent, only for this user.
    expect((await onSecond('val')).status).toBe(200);

    // Lifting is heard only by NOTIFY (the periodic reload is every 30 s): in force well before that.
    expect((await w.t.admin('POST', `/admin/api/reviews/${reviewId}/approve`, { comment: 'fine' }, reviewerToken)).status).toBe(200);
    delays.lifted = await until(async () => (await onSecond('una')).status === 200, 10_000);
    expect(delays.lifted).toBeLessThan(10_000);

    ctx.annotate(`agent hold → in force on the other instance (own process), ms: ${JSON.stringify(delays)}`);
    process.stderr.write(`agent hold propagation delays (ms): ${JSON.stringify(delays)}\n`);
  });

  it('mints no token for a held agent on an instance that has not heard of the hold, and its heartbeat finds the dead listener', async (ctx) => {
    // The first instance (this process) listens too: the other listener is the second instance's.
    const pid = await listenerOtherThan(firstListeners);
    // The second instance's copy is loaded, and says wes's agent is active.
    expect((await onSecond('wes')).status).toBe(200);

    // Its notification connection goes silent (the server process that holds it is frozen: no error, no
    // notification, as a half-open connection would be). Needs the database on this machine, and the right.
    try {
      process.kill(pid, 'SIGSTOP');
    } catch (err) {
      ctx.skip(`cannot freeze the listener's server process (${(err as Error).message}): the database is not on this machine, or not ours to signal`);
    }
    const frozenAt = performance.now();
    try {
      await suspendOnFirst('wes');
      const r = await onSecond('wes');
      const answeredMs = Math.round(performance.now() - frozenAt);
      const logged = second.output().stdout;
      // The listener was not yet found dead (its heartbeat is every 3 s, bounded by 3 s): the copy said active.
      expect(logged).not.toContain('notification connection failed');
      expect({ status: r.status, reasons: await reasonsOf(r) }).toEqual({ status: 400, reasons: ['agent_suspended'] });
      const { rows } = await db.raw(`select status from issued_tokens where client_id = 'agent' and subject = 'wes' and status = 'active'`) as { rows: unknown[] };
      expect(rows).toEqual([]);

      // The heartbeat finds the frozen connection, and the instance says so (it then reads holds from the database).
      const foundMs = await until(async () => second.output().stdout.includes('heartbeat failed'), 15_000);
      ctx.annotate(`refused ${answeredMs} ms after the listener froze; heartbeat found it dead ${foundMs + answeredMs} ms after`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // A new listener is connected (the second instance's, beside ours).
    await listenerOtherThan(new Set([pid, ...firstListeners]));
  });
});
