import type { Knex } from 'knex';
import type { Db } from '../store/db.ts';
import type { LedgerInput, PreparedEntry } from './entry.ts';
import { seal } from './entry.ts';

/** The tables src/ledger owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['ledger_entries', 'ledger_head', 'ledger_personal'] as const;

export type { LedgerInput };

/**
 * Appends entries inside the caller's transaction, under the ledger head's row lock, so the chain stays
 * one sequence whatever the number of processes, and the entries commit with the change they record or
 * not at all. The entries, their personal values, the head's move and `alongside` (inserts the caller
 * records with them) are one statement. Returns the sequence numbers.
 */
export async function appendEntries(trx: Db, inputs: Array<LedgerInput | PreparedEntry>, alongside: Knex.QueryBuilder[] = []): Promise<number[]> {
  const head = await trx('ledger_head').where({ id: 1 }).forUpdate().first('seq', 'chain_hash');
  let seq = Number(head.seq);
  let previous: Buffer = head.chain_hash;
  const at = new Date();
  const seqs: number[] = [];
  const entries = [];
  const personal = new Map<string, string>();
  for (const input of inputs) {
    seq += 1;
    const sealed = seal(input, seq, at, previous);
    for (const p of sealed.personal) personal.set(p.hash, p.value);
    entries.push(sealed.entry);
    previous = sealed.entry.chain_hash;
    seqs.push(seq);
  }
  const writes = [...alongside];
  if (personal.size) writes.push(trx('ledger_personal').insert([...personal].map(([hash, value]) => ({ hash, value }))).onConflict('hash').ignore());
  if (entries.length) writes.push(trx('ledger_entries').insert(entries));
  let statement = trx('ledger_head');
  writes.forEach((w, i) => { statement = statement.with(`w${i}`, w); });
  await statement.where({ id: 1 }).update({ seq, chain_hash: previous });
  return seqs;
}

export async function appendEntry(trx: Db, input: LedgerInput): Promise<number> {
  const [seq] = await appendEntries(trx, [input]);
  return seq!;
}
