import type pg from 'pg';
import { isEmbedded, type Db } from './db.ts';

/**
 * One named statement for a hot path on PostgreSQL: parsed and planned once per pooled connection, and
 * sent without knex's query building (a few hundred µs of main thread per request on introspection).
 * The owning module writes the SQL with $1, $2…; on PGlite the same text goes through knex. The pool's
 * timeouts and its handling of a broken connection are those of every other query.
 */
export async function namedQuery<T>(db: Db, name: string, text: string, values: unknown[]): Promise<T[]> {
  if (isEmbedded(db)) return (await db.raw(text.replace(/\$(\d+)/g, '?'), values as never[])).rows as T[];
  const conn = await db.client.acquireConnection() as pg.Client;
  try {
    return (await conn.query<T & pg.QueryResultRow>({ name, text, values })).rows;
  } finally {
    await db.client.releaseConnection(conn);
  }
}
