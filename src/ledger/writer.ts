import type { Db } from '../store/db.ts';
import { appendEntries } from './append.ts';
import type { LedgerInput } from './entry.ts';

export interface LedgerJob {
  entries: LedgerInput[];
  /** Rows that must commit with the entries (e.g. the issued-token index), in the same transaction. */
  rows?: (trx: Db) => Promise<void>;
}

interface Pending { job: LedgerJob; resolve: (seqs: number[]) => void; reject: (err: unknown) => void }

/**
 * Group commit for the ledger: jobs that arrive while a transaction is committing wait and go together
 * in the next one, each in its own savepoint so one failure does not sink the others. Every caller is
 * answered only after the COMMIT that holds its entries. With `maxBatch` 1 (PGlite's single connection)
 * each job is its own transaction.
 */
export class LedgerWriter {
  readonly #db: Db;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #flushing = false;

  constructor(db: Db, maxBatch: number) {
    this.#db = db;
    this.#maxBatch = maxBatch;
  }

  commit(job: LedgerJob): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      const results = new Map<Pending, number[] | { error: unknown }>();
      try {
        await this.#db.transaction(async (trx) => {
          await trx.raw('SET LOCAL synchronous_commit = on');
          for (const p of batch) {
            if (batch.length === 1) {
              await p.job.rows?.(trx);
              results.set(p, await appendEntries(trx, p.job.entries));
              continue;
            }
            try {
              results.set(p, await trx.transaction(async (sp) => {
                await p.job.rows?.(sp);
                return appendEntries(sp, p.job.entries);
              }));
            } catch (error) {
              results.set(p, { error });
            }
          }
        });
      } catch (error) {
        for (const p of batch) p.reject(error);
        continue;
      }
      for (const p of batch) {
        const r = results.get(p)!;
        if (Array.isArray(r)) p.resolve(r);
        else p.reject(r.error);
      }
    }
    this.#flushing = false;
  }
}
