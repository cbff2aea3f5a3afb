import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/store/db.ts';
import { runCliHere, startCli } from '../helpers/cli.ts';
import { freePort, freshDatabase, onPostgres, tokenRequest } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, details, EXPENSES, IDP, TOKEN_EXCHANGE } from '../helpers/world.ts';

// Several intentgate processes on one PostgreSQL, as behind a load balancer; one is killed (SIGKILL: no
// shutdown, no flush) in the middle of the load. Whatever a client received must be on record.
describe.skipIf(!onPostgres)('three instances on one database, one killed mid-load (PostgreSQL only; PGlite has one process)', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let env: Record<string, string>;
  let db: Db;
  const instances: Array<ReturnType<typeof startCli> & { url: string }> = [];

  beforeAll(async () => {
    database = await freshDatabase();
    const dataDir = database.env.DATA_DIR!;
    const configFile = path.join(dataDir, 'intentgate.yaml');
    // The shipped configuration, with the exchange tests' policy and limits that one test client cannot hit.
    const config = YAML.parse(readFileSync('config/default.yaml', 'utf8')) as Record<string, unknown>;
    Object.assign(config, {
      policy: { file: path.resolve('test/fixtures/policy/exchange.yaml') },
      development_issuer: false,
      rate_limits: { ...(config.rate_limits as object), token: { burst: 100_000, per_second: 100_000 } },
    });
    writeFileSync(configFile, YAML.stringify(config));
    env = {
      ...database.env,
      HOST: '127.0.0.1',
      // One issuer for all three, as behind one load balancer.
      ISSUER: 'http://127.0.0.1:1',
      ADMIN_TOKEN: `test-admin-${randomBytes(16).toString('hex')}`,
      INTENTGATE_KEK: randomBytes(32).toString('base64url'),
      INTENTGATE_CONFIG: configFile,
      LOG_LEVEL: 'error',
    };
    // One after the other: the first creates the signing and checkpoint keys the others then load.
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const proc = startCli(['start-dev'], { ...env, PORT: String(port) }, /listening: /);
      await proc.started;
      instances.push({ ...proc, url: `http://127.0.0.1:${port}` });
    }
    db = createDb({ databaseUrl: env.DATABASE_URL, dataDir, poolMax: 2 });
  }, 120_000);

  afterAll(async () => {
    for (const p of instances) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(instances.map((p) => p.exited));
    await db?.destroy();
    await database?.drop();
  }, 60_000);

  it('finds every token a client received in the issued-token index with its ledger entry, and a whole chain', async (ctx) => {
    const admin = (method: string, pathname: string, body: unknown) => fetch(`${instances[0]!.url}${pathname}`, {
      method, headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    expect((await admin('POST', '/admin/api/issuers', {
      issuer: IDP, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'ES256' }] }, audiences: ['intentgate'], algorithms: ['ES256'],
    })).status).toBe(201);
    expect((await admin('POST', '/admin/api/resources', {
      identifier: EXPENSES, name: 'Expenses', scopes: [{ name: 'expenses:read', sensitivity: 'internal', operation: 'read' }, { name: 'expenses:submit', sensitivity: 'confidential', operation: 'write' }],
    })).status).toBe(201);
    const created = await admin('POST', '/admin/api/clients', { client_id: 'agent', grant_types: [TOKEN_EXCHANGE], scope: 'expenses:read expenses:submit' });
    const agent: [string, string] = ['agent', ((await created.json()) as { client_secret: string }).client_secret];

    const userToken = (sub: string) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ scope: 'expenses:read expenses:submit', groups: ['staff'] })
        .setProtectedHeader({ alg: 'ES256', kid: 'idp-1', typ: 'JWT' })
        .setIssuer(IDP).setSubject(sub).setAudience('intentgate').setIssuedAt(now).setExpirationTime(now + 3600).setJti(randomBytes(8).toString('hex'))
        .sign(privateKey);
    };
    const exchange = async (url: string, i: number) => tokenRequest(url, {
      grant_type: TOKEN_EXCHANGE, subject_token: await userToken(`user-${i % 40}`), subject_token_type: ACCESS_TOKEN_TYPE, resource: EXPENSES,
      scope: 'expenses:submit', intent: `submit expense report ${i}`, authorization_details: details('submit', { type: 'Expense', id: `exp_${i}`, amount: 12 }),
    }, agent);

    // Every instance has heard of the registry changes (made on the first) before the load starts.
    for (const inst of instances) {
      for (let tries = 0; ; tries++) {
        const r = await exchange(inst.url, -1);
        if (r.status === 200) break;
        if (tries > 200) throw new Error(`${inst.url} never accepted the exchange: ${r.status} ${await r.text()}`);
        await new Promise((res) => setTimeout(res, 50));
      }
    }

    const TOTAL = 360;
    const CONCURRENCY = 24;
    const received: string[] = [];
    const outcomes: Record<string, number> = {};
    let next = 0;
    let killedAt: number | undefined;
    const worker = async () => {
      for (let i = next++; i < TOTAL; i = next++) {
        if (i === TOTAL / 3 && killedAt === undefined) {
          killedAt = i;
          instances[2]!.child.kill('SIGKILL');
        }
        const url = instances[i % 3]!.url;
        try {
          const r = await exchange(url, i);
          const body = await r.json() as { access_token?: string };
          outcomes[r.status] = (outcomes[r.status] ?? 0) + 1;
          if (r.status === 200) received.push(body.access_token!);
        } catch {
          outcomes.connection_failed = (outcomes.connection_failed ?? 0) + 1;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(await instances[2]!.exited).toBe(null);
    expect(instances[2]!.child.signalCode).toBe('SIGKILL');
    // The survivors answered every request sent to them; the killed one's share failed (or finished before it died).
    expect(outcomes['200']).toBeGreaterThanOrEqual((TOTAL * 2) / 3);
    expect(Object.keys(outcomes).filter((k) => k !== '200' && k !== 'connection_failed')).toEqual([]);
    expect(outcomes.connection_failed).toBeGreaterThan(0);

    ctx.annotate(`answers: ${JSON.stringify(outcomes)}`);
    const jtis = received.map((t) => decodeJwt(t).jti as string);
    expect(new Set(jtis).size).toBe(jtis.length);
    const indexed = await db('issued_tokens').whereIn('jti', jtis).select('jti', 'status', 'grant_type');
    expect(indexed).toHaveLength(jtis.length);
    expect(indexed.every((r: { status: string; grant_type: string }) => r.status === 'active' && r.grant_type === 'token-exchange')).toBe(true);
    const entries = await db('ledger_entries').whereIn('jti', jtis).where({ kind: 'exchange.granted' }).select('jti');
    expect(entries.map((e: { jti: string }) => e.jti).sort()).toEqual([...jtis].sort());

    // The chain: one entry per sequence number from 1 to the head, none missing, none twice.
    const head = await db('ledger_head').where({ id: 1 }).first('seq');
    const seqs = (await db('ledger_entries').orderBy('seq').select('seq')).map((r: { seq: number }) => Number(r.seq));
    expect(seqs).toEqual(Array.from({ length: Number(head.seq) }, (_, k) => k + 1));

    const verify = await runCliHere(['ledger', 'verify'], env);
    expect(verify.stdout).toMatch(/^ledger OK: /);
    expect(verify.code).toBe(0);
  }, 180_000);
});
