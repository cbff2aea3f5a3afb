import type { Db } from '../../src/store/db.ts';
import { queryLedger, type LedgerEntry } from '../../src/ledger/query.ts';

/** The newest ledger entry of a kind, decoded (personal values restored). */
export async function lastEntry(db: Db, kind: string): Promise<LedgerEntry> {
  const { items } = await queryLedger(db, { kind }, 1);
  if (!items[0]) throw new Error(`no ledger entry of kind ${kind}`);
  return items[0];
}

export async function entriesOf(db: Db, kind: string): Promise<LedgerEntry[]> {
  return (await queryLedger(db, { kind }, 500)).items;
}

/** The newest entry of a kind whose (personal) intent satisfies `match`. */
export async function entryWithIntent(db: Db, kind: string, match: (intent: string) => boolean): Promise<LedgerEntry | undefined> {
  return (await entriesOf(db, kind)).find((e) => typeof e.payload.intent === 'string' && match(e.payload.intent));
}
