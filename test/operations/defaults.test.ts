import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { appendEntry } from '../../src/ledger/append.ts';
import { createLogger } from '../../src/ops/log.ts';
import { startServer } from '../../src/server.ts';
import { createDb, type Db } from '../../src/store/db.ts';
import { nowSeconds } from '../../packages/resource/src/protocol/time.ts';
import { runCliHere } from '../helpers/cli.ts';
import { freshDatabase } from '../helpers/server.ts';
import { ACCESS_TOKEN_TYPE, exchangeParams, startWorld, type World } from '../helpers/world.ts';

/** Defaults that must do what they say: key rotation overlap, clock skew, checkpoints, log volume. */

let w: World;
beforeAll(async () => {
  // Checkpoints only at start-up and shutdown here: thresholds no test reaches.
  w = await startWorld({ ledger: { checkpoint_every: 10_000_000, checkpoint_interval: 86_400 } });
});
afterAll(async () => { await w?.t.stop(); });

describe('key rotation overlap', () => {
  it('refuses an overlap shorter than keys.min_rotation_overlap, naming the minimum', async () => {
    for (const overlap of [0, 1, 59]) {
      const res = await w.t.admin('POST', '/admin/api/keys/rotate', { overlap_seconds: overlap });
      expect(res.status).toBe(400);
      const body = await res.json() as { error: string; error_description: string; field: string };
      expect(body).toMatchObject({ error: 'invalid_request', field: 'overlap_seconds' });
      expect(body.error_description).toMatch(/at least 60 s/);
    }
  });

  it('refuses malformed and hostile overlaps as before', async () => {
    for (const body of [{ overlap_seconds: '600' }, { overlap_seconds: 1e12 }, { overlap_seconds: 60.5 }, { overlap_seconds: null }, { overlap: 600 }, '[]', '{"overlap_seconds":600,"overlap_seconds":0}']) {
      const res = await w.t.admin('POST', '/admin/api/keys/rotate', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
  });

  it('accepts the minimum, an empty object and no body at all (the configured overlap)', async () => {
    const before = Date.now();
    const atMinimum = await w.t.admin('POST', '/admin/api/keys/rotate', { overlap_seconds: 60 });
    expect(atMinimum.status).toBe(201);
    expect(Date.parse((await atMinimum.json() as { activates_at: string }).activates_at)).toBeGreaterThanOrEqual(before + 60_000);
    for (const body of [{}, undefined]) {
      const res = await w.t.admin('POST', '/admin/api/keys/rotate', body);
      expect(res.status, JSON.stringify(body)).toBe(201);
      expect(Date.parse((await res.json() as { activates_at: string }).activates_at)).toBeGreaterThanOrEqual(before + w.t.config.rotationOverlap * 1000);
    }
  });

  it('refuses it in the CLI too, and refuses a configured default below the minimum', async () => {
    const db = await freshDatabase();
    try {
      const r = await runCliHere(['keys', 'rotate', '--overlap', '10'], { ...db.env, INTENTGATE_KEK: w.t.env.INTENTGATE_KEK! });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/at least 60 s/);
    } finally {
      await db.drop();
    }
    expect(() => loadConfig('development', w.t.env, { keys: { rotation_overlap: 30 } })).toThrow(ConfigError);
    expect(loadConfig('development', w.t.env, { keys: { rotation_overlap: 30, min_rotation_overlap: 30 } }).rotationOverlap).toBe(30);
  }, 180_000);
});

describe('clock skew and exp', () => {
  it('gives a subject token no grace past its exp, whoever issued it: the skew is for nbf and iat only there', async () => {
    const skew = w.t.config.exchange.clockSkew;
    expect(skew).toBeGreaterThan(2);
    // A delegation token expiring with the user's token, a few seconds from now.
    const exp = nowSeconds() + 12;
    const params = exchangeParams(await w.userToken({ sub: 'skew', exp }), { audience: 'sub-agent', scope: 'expenses:read', intent: 'Delegate reading' });
    delete params.resource;
    const res = await w.exchange('agent', params);
    expect(res.status).toBe(200);
    const delegation = (await res.json() as { access_token: string }).access_token;
    expect(decodeJwt(delegation).exp).toBe(exp);
    while (nowSeconds() < exp + 1) await new Promise((r) => setTimeout(r, 250));

    const presented = await w.exchange('sub-agent', { subject_token: delegation, subject_token_type: ACCESS_TOKEN_TYPE, resource: 'https://expenses.example', scope: 'expenses:read', intent: 'Read' });
    expect(presented.status).toBe(400);
    expect(await presented.json()).toMatchObject({ error: 'invalid_request', error_description: 'subject_token has been revoked or is no longer live' });
    // A trusted issuer's token as far past its exp, well inside the skew: refused too, since an exchanged
    // token never outlives its subject token.
    const late = await w.exchange('agent', exchangeParams(await w.userToken({ sub: 'skew2', iat: exp - 60, exp: nowSeconds() - 1 })));
    expect(late.status).toBe(400);
    expect(await late.json()).toMatchObject({ error: 'invalid_request', error_description: 'subject_token has expired' });
    // The skew does apply to its iat (and nbf): a second inside it is accepted.
    expect((await w.exchange('agent', exchangeParams(await w.userToken({ sub: 'skew3', iat: nowSeconds() + skew - 1 })))).status).toBe(200);
  }, 60_000);
});

describe('checkpoints at start-up and shutdown', () => {
  async function headAndCheckpoint(db: Db): Promise<[number, number]> {
    const head = Number((await db('ledger_head').where({ id: 1 }).first('seq')).seq);
    const row = await db('ledger_checkpoints').max('tree_size as size').first();
    return [head, Number(row?.size ?? 0)];
  }

  it('anchors what is pending on shutdown, and what an earlier run left pending on start-up', async () => {
    for (let i = 0; i < 3; i++) expect((await w.exchange('agent', exchangeParams(await w.userToken({ sub: `cp${i}` })))).status).toBe(200);
    const [pendingHead, before] = await headAndCheckpoint(w.t.server.db);
    expect(before).toBeLessThan(pendingHead);
    await w.t.server.close();

    const db = createDb({ databaseUrl: w.t.config.databaseUrl, dataDir: w.t.config.dataDir, poolMax: 2 });
    try {
      const [head, checkpointed] = await headAndCheckpoint(db);
      expect(checkpointed).toBe(head);
      expect(head).toBeGreaterThanOrEqual(pendingHead);
      // A run that died without its shutdown (kill -9) left an entry unanchored.
      await db.transaction((trx) => appendEntry(trx, { kind: 'test.unanchored', actor: 'test', payload: {} }));
      const [after, still] = await headAndCheckpoint(db);
      expect(still).toBe(after - 1);
    } finally {
      await db.destroy();
    }

    w.t.server = await startServer(w.t.config);
    let head = 0;
    let checkpointed = -1;
    for (let i = 0; i < 300 && checkpointed !== head; i++) {
      [head, checkpointed] = await headAndCheckpoint(w.t.server.db);
      if (checkpointed !== head) await new Promise((r) => setTimeout(r, 100));
    }
    expect(checkpointed).toBe(head);
  }, 60_000);
});

describe('repeated log lines', () => {
  it('writes one warning per kind per interval, then how many it suppressed', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('info', { write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>), repeatIntervalMs: 3_600_000 });
    for (let i = 0; i < 1000; i++) log.warn('database', { message: `timeout expired ${i}` });
    log.error('ledger checkpoint failed', { err: new Error('boom') });
    for (let i = 0; i < 5; i++) log.info('request', { n: i });
    expect(lines.map((l) => l.msg)).toEqual(['database', 'ledger checkpoint failed', 'request', 'request', 'request', 'request', 'request']);
    expect(lines[0]).toMatchObject({ level: 'warn', message: 'timeout expired 0' });
  });

  it('tells the count at the end of the interval even when no further line of that kind comes', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('warn', { write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>), repeatIntervalMs: 200 });
    for (let i = 0; i < 50; i++) log.warn('request failed: storage unavailable', { i });
    // Every line written carries its `i`; a line's `repeated` counts the ones suppressed before it. Together: all 50.
    const told = () => lines.filter((l) => l.i !== undefined).length + lines.reduce((n, l) => n + (typeof l.repeated === 'number' ? l.repeated : 0), 0);
    for (let i = 0; i < 600 && told() < 50; i++) await new Promise((r) => setTimeout(r, 50));
    expect(told()).toBe(50);
    expect(lines.length).toBeLessThan(50);
    expect(lines.some((l) => typeof l.repeated === 'number')).toBe(true);
  });
});
