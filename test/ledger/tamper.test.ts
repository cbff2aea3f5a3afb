import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { chainOf, leafOf } from '../../src/ledger/hash.ts';
import { canonicalBytes } from '../../src/ledger/canonical.ts';
import { publicKeyFrom, verifyLedger, type VerifyReport } from '../../src/ledger/verify.ts';
import type { Db } from '../../src/store/db.ts';
import { runCliHere } from '../helpers/cli.ts';
import { exchangeParams, startWorld, type World } from '../helpers/world.ts';

let w: World;
let db: Db;
let anchors: string;
let pristine: Array<Record<string, unknown>>;
let checkpointSize: number;

async function verify(): Promise<VerifyReport> {
  const jwk = readFileSync(path.join(w.t.env.DATA_DIR!, 'ledger-key.jwk'), 'utf8');
  return verifyLedger(db, await publicKeyFrom(jwk), anchors);
}

/** Runs `fn` as an attacker with write access to the database would: triggers bypassed. */
async function asAttacker(fn: (trx: Db) => Promise<void>): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('SET LOCAL session_replication_role = replica');
    await fn(trx);
  });
}

async function restore(): Promise<void> {
  await asAttacker(async (trx) => {
    await trx('ledger_entries').delete();
    for (const row of pristine) await trx('ledger_entries').insert(row);
    const last = pristine.at(-1)!;
    await trx('ledger_head').where({ id: 1 }).update({ seq: last.seq, chain_hash: last.chain_hash });
  });
  expect((await verify()).ok).toBe(true);
}

beforeAll(async () => {
  w = await startWorld({ ledger: { checkpoint_every: 1_000_000, checkpoint_interval: 86_400 } });
  db = w.t.server.db;
  anchors = w.t.config.ledger.anchorDir;
  for (let i = 0; i < 12; i++) {
    const res = await w.exchange('agent', exchangeParams(await w.userToken({ sub: `user-${i}` })));
    expect(res.status).toBe(200);
  }
  const made = await w.t.admin('POST', '/admin/api/ledger/checkpoint');
  expect(made.status).toBe(201);
  checkpointSize = ((await made.json()) as { tree_size: number }).tree_size;
  // A few entries after the checkpoint, not yet covered by it.
  for (let i = 0; i < 3; i++) await w.exchange('agent', exchangeParams(await w.userToken({ sub: `late-${i}` })));
  pristine = await db('ledger_entries').orderBy('seq').select('*');
  expect(pristine.length).toBeGreaterThan(checkpointSize);
});
afterAll(async () => { await w?.t.stop(); });

describe('the ledger is append-only and verifiable', () => {
  it('verifies an untouched ledger, and the CLI says so', async () => {
    const report = await verify();
    expect(report).toMatchObject({ ok: true, entries: pristine.length, checkpoints: 1, anchors: 1 });
    expect(report.head_hash).toBe(Buffer.from(pristine.at(-1)!.chain_hash as Buffer).toString('hex'));
    const cli = await runCliHere(['ledger', 'verify', '--anchors', anchors], { DATABASE_URL: w.t.env.DATABASE_URL ?? '', DATA_DIR: w.t.env.DATA_DIR!, INTENTGATE_KEK: w.t.env.INTENTGATE_KEK! });
    // On PostgreSQL the CLI opens the database itself; on the embedded one (open in this process) it asks the
    // running server, through the admin API.
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(`ledger OK: ${pristine.length} entries`);
  });

  it('refuses UPDATE, DELETE and TRUNCATE through its triggers', async () => {
    await expect(db('ledger_entries').where({ seq: 1 }).update({ kind: 'x' })).rejects.toMatchObject({ code: '42501' });
    await expect(db('ledger_entries').where({ seq: 1 }).delete()).rejects.toMatchObject({ code: '42501' });
    await expect(db.raw('TRUNCATE ledger_entries')).rejects.toMatchObject({ code: '42501' });
    await expect(db('ledger_checkpoints').delete()).rejects.toMatchObject({ code: '42501' });
  });

  it('names an entry whose field was edited', async () => {
    const target = pristine.find((r) => r.kind === 'exchange.granted')!;
    const edited = Buffer.from(Buffer.from(target.payload as Buffer).toString('utf8').replace('"sub":"user-', '"sub":"mallory-'));
    expect(edited.equals(Buffer.from(target.payload as Buffer))).toBe(false);
    await asAttacker((trx) => trx('ledger_entries').where({ seq: target.seq }).update({ payload: edited }));
    expect((await verify()).problem).toEqual({ seq: target.seq, message: expect.stringContaining('does not match its leaf hash') });
    await restore();
  });

  it('names a deleted entry', async () => {
    await asAttacker((trx) => trx('ledger_entries').where({ seq: 6 }).delete());
    expect((await verify()).problem).toEqual({ seq: 6, message: expect.stringContaining('entry 6 is missing') });
    await restore();
  });

  it('names two swapped entries', async () => {
    const [a, b] = [pristine[2]!, pristine[3]!];
    await asAttacker(async (trx) => {
      const { seq: _sa, ...restA } = a;
      const { seq: _sb, ...restB } = b;
      await trx('ledger_entries').where({ seq: a.seq }).update(restB);
      await trx('ledger_entries').where({ seq: b.seq }).update(restA);
    });
    expect((await verify()).problem).toEqual({ seq: a.seq, message: expect.stringContaining('moved or swapped') });
    await restore();
  });

  it('names an entry edited with every later hash recomputed, from the anchored copy', async () => {
    const k = 3;
    await asAttacker(async (trx) => {
      let previous: Buffer = Buffer.from(pristine[k - 2]!.chain_hash as Buffer);
      for (const row of pristine.slice(k - 1)) {
        let payload: Buffer = Buffer.from(row.payload as Buffer);
        if (row.seq === k) {
          const doc = JSON.parse(payload.toString('utf8'));
          doc.body.granted_scope = ['expenses:read', 'expenses:approve'];
          payload = canonicalBytes(doc);
        }
        const leaf = leafOf(payload);
        const chain = chainOf(previous, leaf);
        await trx('ledger_entries').where({ seq: row.seq }).update({ payload, leaf_hash: leaf, chain_hash: chain });
        previous = chain;
      }
      await trx('ledger_head').where({ id: 1 }).update({ chain_hash: previous });
    });
    const report = await verify();
    expect(report.problem).toEqual({ seq: k, message: expect.stringContaining('differs from the copy anchored') });
    // Without the anchors, the signed checkpoint in the database still catches it (but cannot say which).
    const jwk = readFileSync(path.join(w.t.env.DATA_DIR!, 'ledger-key.jwk'), 'utf8');
    const dbOnly = await verifyLedger(db, await publicKeyFrom(jwk));
    expect(dbOnly.problem).toEqual({ seq: checkpointSize, message: expect.stringContaining('Merkle root of checkpoint') });
    await restore();
  });

  it('names the first missing entry when the tail is truncated below the anchored checkpoint', async () => {
    const keep = checkpointSize - 4;
    await asAttacker(async (trx) => {
      await trx('ledger_entries').where('seq', '>', keep).delete();
      await trx('ledger_checkpoints').delete();
      const last = pristine[keep - 1]!;
      await trx('ledger_head').where({ id: 1 }).update({ seq: keep, chain_hash: last.chain_hash });
    });
    expect((await verify()).problem).toEqual({ seq: keep + 1, message: expect.stringContaining(`database holds ${keep}`) });
    await asAttacker(async (trx) => {
      const anchored = JSON.parse(readFileSync(path.join(anchors, (await import('node:fs')).readdirSync(anchors)[0]!), 'utf8'));
      await trx('ledger_checkpoints').insert({ tree_size: anchored.tree_size, root_hash: Buffer.from(anchored.root_hash, 'hex'), timestamp: new Date(anchored.timestamp), kid: anchored.kid, jws: anchored.jws });
    });
    await restore();
  });
});
