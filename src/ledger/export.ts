import type { Db } from '../store/db.ts';
import { decodeRows } from './query.ts';

const PAGE = 2000;

/**
 * The ledger in sequence order as NDJSON, a page of lines at a time (each entry as readers see it:
 * personal values restored unless erased), from `since` on when given.
 */
export async function* exportLedger(db: Db, since?: Date): AsyncGenerator<string> {
  let after = 0;
  for (;;) {
    const q = db('ledger_entries').where('seq', '>', after);
    if (since) q.where('at', '>=', since);
    const rows = await q.orderBy('seq', 'asc').limit(PAGE).select('seq', 'payload', 'leaf_hash', 'chain_hash');
    if (rows.length === 0) return;
    after = Number(rows.at(-1)!.seq);
    yield `${(await decodeRows(db, rows)).map((e) => JSON.stringify(e)).join('\n')}\n`;
  }
}
