import { afterAll, beforeAll } from 'vitest';
import { LedgerWriter } from '../../src/ledger/writer.ts';
import { createDb, isEmbedded, type Db } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
import { lockStandings } from '../../src/tasks/holds.ts';
import { issuedTokensInsert, lockLiveParents, type IssuedToken } from '../../src/tokens/issued.ts';
import { freshDatabase } from './server.ts';

/**
 * A fresh database and a ledger writer wired as the server wires it (issued-token index, standings re-checked
 * at commit), for tests of the group commit against concurrent writes. Read `db` and `writer` inside tests.
 */
export function commitWriterFixture(): { readonly db: Db; readonly writer: LedgerWriter<IssuedToken, unknown> } {
  let database: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let db: Db | undefined;
  let writer: LedgerWriter<IssuedToken, unknown> | undefined;
  beforeAll(async () => {
    database = await freshDatabase();
    db = createDb({ databaseUrl: database.env.DATABASE_URL, dataDir: database.env.DATA_DIR! });
    await migrate(db);
    writer = new LedgerWriter<IssuedToken, unknown>(db, isEmbedded(db) ? 1 : 64, { insert: issuedTokensInsert, lockLiveParents }, { lockStandings });
  }, 60_000);
  afterAll(async () => {
    await db?.destroy();
    await database?.drop();
  });
  return { get db() { return db!; }, get writer() { return writer!; } };
}
