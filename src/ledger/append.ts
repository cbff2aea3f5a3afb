import type { Db } from '../store/db.ts';
import type { LedgerInput } from './entry.ts';
import { seal } from './entry.ts';

export type { LedgerInput };

/**
 * Appends entries inside the caller's transaction, under the ledger head's row lock, so the chain stays
 * one sequence whatever the number of processes, and the entries commit with the change they record or
 * not at all. Returns the sequence numbers.
 */
export async function appendEntries(trx: Db, inputs: LedgerInput[]): Promise<number[]> {
  const head = await trx('ledger_head').where({ id: 1 }).forUpdate().first('seq', 'chain_hash');
  let seq = Number(head.seq);
  let previous: Buffer = head.chain_hash;
  const at = new Date();
  const seqs: number[] = [];
  for (const input of inputs) {
    seq += 1;
    const { entry, personal } = seal(input, seq, at, previous);
    if (personal.length) await trx('ledger_personal').insert(personal).onConflict('hash').ignore();
    await trx('ledger_entries').insert(entry);
    previous = entry.chain_hash;
    seqs.push(seq);
  }
  await trx('ledger_head').where({ id: 1 }).update({ seq, chain_hash: previous });
  return seqs;
}

export async function appendEntry(trx: Db, input: LedgerInput): Promise<number> {
  const [seq] = await appendEntries(trx, [input]);
  return seq!;
}
