import type { Db } from '../store/db.ts';

export interface LedgerInput {
  kind: string;
  /** Who caused it: an admin id, a client id, or `system`. */
  actor: string;
  payload: Record<string, unknown>;
}

/**
 * Appends one entry inside the caller's transaction, so the entry commits with the change it records
 * or not at all. (Issue 4 replaces the plain table with the hash chain behind this same function.)
 */
export async function appendEntry(trx: Db, entry: LedgerInput): Promise<number> {
  const [row] = await trx('ledger_entries')
    .insert({ at: new Date(), kind: entry.kind, actor: entry.actor, payload: JSON.stringify(entry.payload) })
    .returning('seq');
  return Number((row as { seq: number }).seq);
}
