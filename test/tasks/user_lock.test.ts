import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/store/db.ts';
import { StorageUnavailable } from '../../src/store/errors.ts';
import { UserLocks } from '../../src/tasks/user_lock.ts';
import { freshDatabase, onPostgres } from '../helpers/server.ts';

const warnings: string[] = [];
process.on('warning', (w) => warnings.push(w.message));

// The advisory locks exist on PostgreSQL only (PGlite has one process and one connection: nothing to exclude).
describe.skipIf(!onPostgres)('user decision locks after a failed lock query', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let db: Db;
  let other: pg.Client;
  beforeAll(async () => {
    database = await freshDatabase();
    db = createDb({ databaseUrl: database.env.DATABASE_URL, dataDir: database.env.DATA_DIR! });
    other = new pg.Client({ connectionString: database.env.DATABASE_URL });
    await other.connect();
  });
  afterAll(async () => {
    await other?.end();
    await db?.destroy();
    await database?.drop();
  });

  const heldElsewhere = async (key: string): Promise<boolean> => {
    const r = await other.query<{ ok: boolean }>('select pg_try_advisory_lock(hashtextextended($1, 0)) as ok', [key]);
    if (r.rows[0]!.ok) await other.query('select pg_advisory_unlock(hashtextextended($1, 0))', [key]);
    return !r.rows[0]!.ok;
  };

  it('ends and forgets the lock session, so no lock it held (or may take late) outlives the 503', async () => {
    const locks = new UserLocks(db, { databaseUrl: database.env.DATABASE_URL, sessions: 1 });
    try {
      await locks.acquire('user-a');
      expect(await heldElsewhere('user-a')).toBe(true);
      // A lock query that fails on the server while the session stays connected: the same path as a
      // query_timeout, whose statement may still take the lock after the caller gave up.
      await expect(locks.acquire('user-z', [{ sql: 'select 1 / 0', bindings: [] }])).rejects.toBeInstanceOf(StorageUnavailable);
      expect(await heldElsewhere('user-a')).toBe(false);
      // The next decision opens a new session.
      const { release } = await locks.acquire('user-b');
      expect(await heldElsewhere('user-b')).toBe(true);
      await release();
      await locks.acquire('user-b');
    } finally {
      await locks.close();
    }
  });

  it('runs the reads once the lock is held, in the same round trip: they see what committed before the holder let go', async () => {
    await db.raw('create table if not exists lock_probe (note text)');
    const locks = new UserLocks(db, { databaseUrl: database.env.DATABASE_URL, sessions: 1 });
    try {
      // Another process holds the user; our reads, taken meanwhile without the lock, must be thrown away.
      await other.query('select pg_advisory_lock(hashtextextended($1, 0))', ['user-c']);
      const waiting = locks.acquire('user-c', [{ sql: 'select note from lock_probe order by note', bindings: [] }]);
      await new Promise((r) => setTimeout(r, 100));
      await other.query("insert into lock_probe values ('written by the holder')");
      await other.query('select pg_advisory_unlock(hashtextextended($1, 0))', ['user-c']);
      const held = await waiting;
      expect(held.rows).toEqual([[{ note: 'written by the holder' }]]);
      expect(await heldElsewhere('user-c')).toBe(true);
      await held.release();
    } finally {
      await locks.close();
    }
  });

  it('sends bindings as literals that cannot break out of the statement', async () => {
    const locks = new UserLocks(db, { databaseUrl: database.env.DATABASE_URL, sessions: 1 });
    try {
      const hostile = "o'brien\\'); drop table lock_probe; --";
      const held = await locks.acquire('user-d', [{ sql: 'select ?::text as v, ?::jsonb as j', bindings: [hostile, JSON.stringify([{ object: { id: hostile } }])] }]);
      expect(held.rows).toEqual([[{ v: hostile, j: [{ object: { id: hostile } }] }]]);
      await held.release();
      expect((await db.raw('select count(*)::int as n from lock_probe')).rows[0].n).toBe(1);
    } finally {
      await locks.close();
    }
  });

  it('refuses text PostgreSQL cannot hold for its caller alone, before it can fail a round trip shared with others', async () => {
    const locks = new UserLocks(db, { databaseUrl: database.env.DATABASE_URL, sessions: 1 });
    try {
      const [a, bad, badKey, c] = await Promise.allSettled([
        locks.acquire('user-e', [{ sql: 'select ?::text as v', bindings: ['fine'] }]),
        locks.acquire('user-f', [{ sql: 'select ?::text as v', bindings: ['nul \0 inside'] }]),
        locks.acquire('user-\ud800'),
        locks.acquire('user-g'),
      ]);
      expect(a.status === 'fulfilled' && a.value.rows).toEqual([[{ v: 'fine' }]]);
      expect(bad.status === 'rejected' && !(bad.reason instanceof StorageUnavailable)).toBe(true);
      expect(badKey.status).toBe('rejected');
      expect(c.status).toBe('fulfilled');
      // The others' locks are held: their session was not ended.
      expect(await heldElsewhere('user-e')).toBe(true);
      expect(await heldElsewhere('user-g')).toBe(true);
    } finally {
      await locks.close();
    }
  });

  it('serves many users at once on one session, one query in flight at a time (no pg queueing), each with its own rows', async () => {
    const locks = new UserLocks(db, { databaseUrl: database.env.DATABASE_URL, sessions: 1 });
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `user-many-${i}`);
      const held = await Promise.all(keys.map((k) => locks.acquire(k, [{ sql: 'select ?::text as k', bindings: [k] }, { sql: 'select 2 as two', bindings: [] }])));
      held.forEach((h, i) => expect(h.rows).toEqual([[{ k: keys[i] }], [{ two: 2 }]]));
      for (const k of keys) expect(await heldElsewhere(k)).toBe(true);
      // Releases and new acquires interleave on the session: the same user again, and new ones.
      await Promise.all(held.map((h) => h.release()));
      const again = await Promise.all([...keys.slice(0, 10), 'user-many-new'].map((k) => locks.acquire(k)));
      await Promise.all(again.map((h) => h.release()));
      await locks.acquire('user-many-last').then((h) => h.release());
      await new Promise((r) => setTimeout(r, 100));
      for (const k of keys) expect(await heldElsewhere(k)).toBe(false);
    } finally {
      await locks.close();
    }
    // Over this whole file: pg warns (once) when a query is sent while another is in flight on a client.
    expect(warnings.filter((w) => w.includes('already executing a query'))).toEqual([]);
  });
});
