import type { Knex } from 'knex';
import type { Db } from '../store/db.ts';
import { isStorageFailure } from '../store/errors.ts';
import { appendEntries } from './append.ts';
import { prepare, type LedgerInput, type PreparedEntry } from './entry.ts';

export interface LedgerJob<T = unknown, S = unknown> {
  entries: LedgerInput[];
  /** Issued-token index rows that must commit with the entries. */
  tokens?: T[];
  /** Tokens that must still be live when this commits (the parents of `tokens`). */
  parents?: string[];
  /** Other rows that must commit with the entries (a started task's row), written before the ledger head is locked. */
  writes?: (trx: Db) => Promise<void>;
  /**
   * The standings this grant was decided on: its agent's (for one user) and, inside a task, its task's. Re-read
   * at commit, and `refuse` answers the refusal the decision would have given on them (undefined: it stands).
   */
  standing?: { agent?: AgentKey; task?: string; refuse: (fresh: Standings<S>) => Error | undefined };
}

/** The standings re-read for one job: its agent's and its task's, as it named them. */
export interface Standings<S> { agent?: S; task?: S }

/** An agent, for one user: the key of its standing. */
export interface AgentKey { client_id: string; issuer: string; sub: string }

/** A job refused at commit: its agent's or task's standing changed after the decision. Nothing of it was recorded. */
export class StandingChanged extends Error {
  readonly refusal: Error;
  constructor(refusal: Error) {
    super(refusal.message);
    this.refusal = refusal;
  }
}

/**
 * The agents' and tasks' standings, as the writer re-checks them (src/tasks owns agent_holds and tasks): handed
 * in, as the TokenIndex is, so the ledger imports no domain above it.
 */
export interface StandingIndex<S> {
  /**
   * Each agent's and each task's standing (in order), locked against change until this transaction ends: a
   * hold or task suspension written meanwhile waits for this commit (and then revokes what it recorded), or
   * came first and is seen here. One round trip for both.
   */
  lockStandings(trx: Db, agents: AgentKey[], tasks: string[]): Promise<{ agents: S[]; tasks: S[] }>;
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
  /** The insert of the rows to record, unexecuted (undefined when there are none). */
  insert(trx: Db, tokens: T[]): Knex.QueryBuilder | undefined;
  /** Locks the parents for share; answers the first that is no longer live. */
  lockLiveParents(trx: Db, jtis: string[]): Promise<string | undefined>;
}

interface Pending<T, S> { job: LedgerJob<T, S>; prepared: PreparedEntry[]; resolve: (seqs: number[]) => void; reject: (err: unknown) => void }

/**
 * Group commit for the ledger: jobs that arrive while a transaction is committing go together in the
 * next one, written with one statement (multi-row inserts in a WITH) under one lock of the ledger head, so
 * a batch costs the same few round trips and one fsync whatever its size. Every caller is answered only
 * after the COMMIT that holds its entries. If a batch fails, each of its jobs is retried alone, so one
 * bad job cannot sink the others; a storage failure fails the whole batch at once. With `maxBatch` 1
 * (PGlite's single connection) each job is alone.
 */
export class LedgerWriter<T = unknown, S = unknown> {
  readonly #db: Db;
  readonly #maxBatch: number;
  readonly #index: TokenIndex<T>;
  readonly #standings: StandingIndex<S> | undefined;
  #queue: Pending<T, S>[] = [];
  #flushing = false;

  constructor(db: Db, maxBatch: number, index: TokenIndex<T>, standings?: StandingIndex<S>) {
    this.#db = db;
    this.#maxBatch = maxBatch;
    this.#index = index;
    this.#standings = standings;
  }

  commit(job: LedgerJob<T, S>): Promise<number[]> {
    // A payload that cannot be canonicalised fails here, alone, not inside a batch it would sink; the
    // canonical body made here is the one sealed.
    let prepared: PreparedEntry[];
    try {
      prepared = job.entries.map(prepare);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, prepared, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  /** One transaction for the batch: each job's sequence numbers, or its refusal (its agent or task is held now). */
  async #write(batch: Pending<T, S>[]): Promise<Array<number[] | StandingChanged>> {
    return this.#db.transaction(async (trx) => {
      await trx.raw('SET LOCAL synchronous_commit = on');
      // Standings first (once per batch), then parents, then the ledger head: the order a suspension takes
      // them (its hold lock, then the tokens it revokes, then the head).
      const refused = await this.#refusals(trx, batch);
      const kept = batch.filter((p) => !refused.has(p));
      // Parents are locked before the ledger head, in the order revocation takes them (see tokens/revoke.ts).
      const gone = await this.#index.lockLiveParents(trx, [...new Set(kept.flatMap((p) => p.job.parents ?? []))]);
      if (gone) throw new ParentNotLive(gone);
      for (const p of kept) await p.job.writes?.(trx);
      // The index rows go in the statement that appends the entries: one round trip for both.
      const rows = this.#index.insert(trx, kept.flatMap((p) => p.job.tokens ?? []));
      const seqs = kept.length ? await appendEntries(trx, kept.flatMap((p) => p.prepared), rows ? [rows] : []) : [];
      let at = 0;
      return batch.map((p) => refused.get(p) ?? seqs.slice(at, (at += p.job.entries.length)));
    });
  }

  /** The jobs whose agent's or task's standing, read (and locked) now, refuses what they record. */
  async #refusals(trx: Db, batch: Pending<T, S>[]): Promise<Map<Pending<T, S>, StandingChanged>> {
    const refused = new Map<Pending<T, S>, StandingChanged>();
    const checked = batch.filter((p) => p.job.standing && (p.job.standing.agent || p.job.standing.task !== undefined));
    if (!this.#standings || checked.length === 0) return refused;
    const keyOf = (k: AgentKey) => JSON.stringify([k.client_id, k.issuer, k.sub]);
    const agents = new Map(checked.flatMap((p) => (p.job.standing!.agent ? [[keyOf(p.job.standing!.agent), p.job.standing!.agent] as const] : [])));
    const tasks = [...new Set(checked.flatMap((p) => (p.job.standing!.task !== undefined ? [p.job.standing!.task] : [])))];
    const read = await this.#standings.lockStandings(trx, [...agents.values()], tasks);
    const byAgent = new Map([...agents.keys()].map((k, i) => [k, read.agents[i]!]));
    const byTask = new Map(tasks.map((t, i) => [t, read.tasks[i]!]));
    for (const p of checked) {
      const { agent, task, refuse } = p.job.standing!;
      const refusal = refuse({ ...(agent ? { agent: byAgent.get(keyOf(agent))! } : {}), ...(task !== undefined ? { task: byTask.get(task)! } : {}) });
      if (refusal) refused.set(p, new StandingChanged(refusal));
    }
    return refused;
  }

  #settle(p: Pending<T, S>, result: number[] | StandingChanged): void {
    if (result instanceof StandingChanged) p.reject(result);
    else p.resolve(result);
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      try {
        const results = await this.#write(batch);
        batch.forEach((p, i) => this.#settle(p, results[i]!));
      } catch (error) {
        // Alone, each job would meet the same unreachable database again, one timeout after another (the
        // last caller of a batch of n waiting n+1 timeouts for its 503): all fail together instead.
        if (batch.length === 1 || isStorageFailure(error)) {
          for (const p of batch) p.reject(error);
          continue;
        }
        for (const p of batch) {
          try {
            this.#settle(p, (await this.#write([p]))[0]!);
          } catch (err) {
            p.reject(err);
          }
        }
      }
    }
    this.#flushing = false;
  }
}
