// intentgate in its own process for `npm run bench` (bench/run.ts forks it): on the PostgreSQL database
// named by BENCH_DATABASE_URL, or on a fresh embedded PGlite database when that is unset. Sends its URL
// and admin token in its first IPC message, then answers the parent's questions (bench/child.ts).
import { serveParent } from './child.ts';
import { startBenchServer } from './fixture.ts';

const server = await startBenchServer(process.env.BENCH_DATABASE_URL || undefined);
const { db } = server.running;

serveParent({
  /** Tokens recorded, by grant type (issued_tokens is written before any token is returned). */
  recorded: async () => {
    const rows = await db('issued_tokens').select('grant_type').count({ n: '*' }).groupBy('grant_type') as Array<{ grant_type: string; n: number | string }>;
    return Object.fromEntries(rows.map((r) => [r.grant_type, Number(r.n)]));
  },
  distinctSubjects: async () => {
    const row = await db('issued_tokens').where({ grant_type: 'token-exchange' }).countDistinct({ n: 'subject' }).first() as { n: number | string };
    return Number(row.n);
  },
}, () => server.close());
process.send!({ ready: { url: server.url, adminToken: server.adminToken } });
