import { mkdirSync } from 'node:fs';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';

// int8 and numeric come back as strings from pg by default; PGlite returns numbers. Make pg agree,
// since every int8 here (sequence numbers, counts) fits in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Db = Knex;

/**
 * One SQL statement, knex-style (`?` placeholders), with text bindings: what a table's owner hands out when
 * the caller runs several owners' reads in one round trip (the user lock, src/tasks/user_lock.ts).
 */
export interface Statement { sql: string; bindings: string[] }

/** Runs statements one after another on `db`: the rows of each, in order. */
export async function runStatements(db: Db, statements: Statement[]): Promise<unknown[][]> {
  const rows: unknown[][] = [];
  for (const s of statements) rows.push(((await db.raw(s.sql, s.bindings)) as { rows: unknown[] }).rows);
  return rows;
}

export interface DbOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  poolMax?: number;
  /** Where knex's own warnings go (it writes to the console otherwise). */
  warn?: (message: string) => void;
}

/** PostgreSQL when a URL is given; otherwise embedded PGlite stored under `dataDir/pglite`. */
export function createDb({ databaseUrl, dataDir, poolMax = 10, warn }: DbOptions): Db {
  const log = warn ? { warn: warn, error: warn, deprecate: warn, debug: () => {} } : undefined;
  if (databaseUrl) {
    return knexFactory({
      ...(log ? { log } : {}),
      client: 'pg',
      // Every call is bounded: connecting, each statement on the server, each query's wait for an answer on
      // the client (a silent peer, e.g. a partition, otherwise hangs forever), and TCP keepalive to notice a dead peer.
      connection: {
        connectionString: databaseUrl,
        connectionTimeoutMillis: 5000,
        statement_timeout: 10_000,
        query_timeout: 12_000,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
      },
      pool: { min: 0, max: poolMax },
      // Requests wait at most this long for a connection, then fail closed with 503.
      acquireConnectionTimeout: 5000,
    });
  }
  mkdirSync(dataDir, { recursive: true });
  return knexFactory({
    ...(log ? { log } : {}),
    client: ClientPgLite as unknown as typeof Knex.Client,
    dialect: 'postgres',
    connection: { filename: `${dataDir}/pglite` } as Knex.StaticConnectionConfig,
    acquireConnectionTimeout: 30000,
  });
}

export function isEmbedded(db: Db): boolean {
  return db.client.config.client !== 'pg';
}
