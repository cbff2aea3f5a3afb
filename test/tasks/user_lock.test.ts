import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/store/db.ts';
import { StorageUnavailable } from '../../src/store/errors.ts';
import { UserLocks } from '../../src/tasks/user_lock.ts';
import { freshDatabase, onPostgres } from '../helpers/server.ts';

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
      // A lock query that fails on the server (a NUL is not valid text) while the session stays connected:
      // the same path as a query_timeout, whose statement may still take the lock after the caller gave up.
      await expect(locks.acquire('user-\0')).rejects.toBeInstanceOf(StorageUnavailable);
      expect(await heldElsewhere('user-a')).toBe(false);
      // The next decision opens a new session.
      const release = await locks.acquire('user-b');
      expect(await heldElsewhere('user-b')).toBe(true);
      await release();
      await locks.acquire('user-b');
    } finally {
      await locks.close();
    }
  });
});
