import type { Db } from '../store/db.ts';
import { isStorageFailure } from '../store/errors.ts';
import { appendEntries } from './append.ts';
import type { LedgerInput } from './entry.ts';
import { canonicalBytes } from './canonical.ts';

export interface LedgerJob<T = unknown> {
  entries: LedgerInput[];
  /** Issued-token index rows that must commit with the entries. */
  tokens?: T[];
  /** Tokens that must still be live when this commits (the parents of `tokens`). */
  parents?: string[];
  /** Other rows that must commit with the entries (a started task's row), written before the ledger head is locked. */
  writes?: (trx: Db) => Promise<void>;
}

/** A parent token was revoked (or expired) between the decision and its child's commit. */
export class ParentNotLive extends Error {
  constructor(jti: string) {
    super(`token ${jti} is no longer live`);
  }
}

/**
 * The issued-token index, as the writer needs it (src/tokens owns the table): the rows to record with the
 * entries, and the parents to lock live first. Handed in, so the ledger imports no domain above it.
 */
export interface TokenIndex<T> {
  record(trx: Db, tokens: T[]): Promise<void>;
  /** Locks the parents for share; answers the first that is no longer live. */
  lockLiveParents(trx: Db, jtis: string[]): Promise<string | undefined>;
}

interface Pending<T> { job: LedgerJob<T>; resolve: (seqs: number[]) => void; reject: (err: unknown) => void }

/**
 * Group commit for the ledger: jobs that arrive while a transaction is committing go together in the
 * next one, written with one multi-row statement per table under one lock of the ledger head, so a
 * batch costs the same few round trips and one fsync whatever its size. Every caller is answered only
 * after the COMMIT that holds its entries. If a batch fails, each of its jobs is retried alone, so one
 * bad job cannot sink the others; a storage failure fails the whole batch at once. With `maxBatch` 1
 * (PGlite's single connection) each job is alone.
 */
export class LedgerWriter<T = unknown> {
  readonly #db: Db;
  readonly #maxBatch: number;
  readonly #index: TokenIndex<T>;
  #queue: Pending<T>[] = [];
  #flushing = false;

  constructor(db: Db, maxBatch: number, index: TokenIndex<T>) {
    this.#db = db;
    this.#maxBatch = maxBatch;
    this.#index = index;
  }

  commit(job: LedgerJob<T>): Promise<number[]> {
    // A payload that cannot be canonicalised fails here, alone, not inside a batch it would sink.
    try {
      for (const e of job.entries) canonicalBytes({ payload: e.payload, personal: e.personal ?? {} });
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #write(batch: Pending<T>[]): Promise<number[][]> {
    return this.#db.transaction(async (trx) => {
      await trx.raw('SET LOCAL synchronous_commit = on');
      // Parents are locked before the ledger head, in the order revocation takes them (see tokens/revoke.ts).
      const gone = await this.#index.lockLiveParents(trx, [...new Set(batch.flatMap((p) => p.job.parents ?? []))]);
      if (gone) throw new ParentNotLive(gone);
      await this.#index.record(trx, batch.flatMap((p) => p.job.tokens ?? []));
      for (const p of batch) await p.job.writes?.(trx);
      const seqs = await appendEntries(trx, batch.flatMap((p) => p.job.entries));
      let at = 0;
      return batch.map((p) => seqs.slice(at, (at += p.job.entries.length)));
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      try {
        const seqs = await this.#write(batch);
        batch.forEach((p, i) => p.resolve(seqs[i]!));
      } catch (error) {
        // Alone, each job would meet the same unreachable database again, one timeout after another (the
        // last caller of a batch of n waiting n+1 timeouts for its 503): all fail together instead.
        if (batch.length === 1 || isStorageFailure(error)) {
          for (const p of batch) p.reject(error);
          continue;
        }
        for (const p of batch) {
          try {
            p.resolve((await this.#write([p]))[0]!);
          } catch (err) {
            p.reject(err);
          }
        }
      }
    }
    this.#flushing = false;
  }
}
