import pg from 'pg';

/** One statement on the suite's PostgreSQL server (DATABASE_URL), on a connection of its own. */
export async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
