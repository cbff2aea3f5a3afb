import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { isEmbedded, runStatements, type Db, type Statement } from '../store/db.ts';
import { StorageUnavailable } from '../store/errors.ts';
import { storableText } from '../validate/schema.ts';

export interface UserLockOptions {
  /** PostgreSQL URL for the lock sessions; absent on the embedded database (one process, no one to exclude). */
  databaseUrl: string | undefined;
  /** Dedicated sessions that hold the advisory locks, outside the request pool. */
  sessions?: number;
  /** How long a decision waits for a user held by another process before failing closed (503). */
  waitMs?: number;
}

const DEFAULT_SESSIONS = 2;
const DEFAULT_WAIT_MS = 5000;
const DISCARD_WAIT_MS = 2000;

// The most queued jobs sent in one round trip.
const MAX_BATCH = 64;

interface Job {
  /** One or more statements, `;`-separated, and how many. */
  text: string;
  statements: number;
  /** Only on this connection (an unlock: its lock lived there); skipped if the session has been replaced. */
  only?: pg.Client;
  resolve(r: { client: pg.Client; results: pg.QueryResult[] }): void;
  reject(err: unknown): void;
}

/**
 * One dedicated PostgreSQL session (not from the request pool) on which many users' advisory locks are held
 * at once. Only non-blocking try-locks run on it, so one held lock never stops another user's lock or unlock.
 * One query is in flight at a time (pg 9 refuses more): what callers queue meanwhile goes in the next round
 * trip together, as one simple-query message of several statements, which PostgreSQL runs in order.
 */
class LockSession {
  readonly #url: string;
  #client: pg.Client | undefined;
  #connecting: Promise<pg.Client> | undefined;
  #closed = false;
  #queue: Job[] = [];
  #draining = false;

  constructor(url: string) {
    this.#url = url;
  }

  async client(): Promise<pg.Client> {
    if (this.#closed) throw new StorageUnavailable(new Error('user locks are closed'));
    if (this.#client) return this.#client;
    this.#connecting ??= (async () => {
      const c = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: 5000, query_timeout: 5000, keepAlive: true });
      // A lost session loses its locks: forget it, so the next acquire opens a new one.
      c.on('error', () => {
        if (this.#client === c) this.#client = undefined;
        c.end().catch(() => {});
      });
      try {
        await c.connect();
      } catch (err) {
        c.end().catch(() => {});
        throw new StorageUnavailable(err);
      }
      this.#client = c;
      return c;
    })().finally(() => { this.#connecting = undefined; });
    return this.#connecting;
  }

  /**
   * Runs `text` (`statements` statements) after everything queued before it, on the session's connection:
   * that connection and each statement's result. A failure fails every job of its round trip and ends the
   * connection (see discard).
   */
  run(text: string, statements: number, only?: pg.Client): Promise<{ client: pg.Client; results: pg.QueryResult[] }> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ text, statements, ...(only ? { only } : {}), resolve, reject });
      if (!this.#draining) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    while (this.#queue.length) {
      let client: pg.Client;
      try {
        client = await this.client();
      } catch (err) {
        for (const j of this.#queue.splice(0)) j.reject(err);
        break;
      }
      const batch: Job[] = [];
      for (const j of this.#queue.splice(0, MAX_BATCH)) {
        // An unlock for a connection that is gone: its locks went with it.
        if (j.only && j.only !== client) j.resolve({ client: j.only, results: [] });
        else batch.push(j);
      }
      if (batch.length === 0) continue;
      let results: pg.QueryResult[];
      try {
        const r = await client.query(batch.map((j) => j.text).join(';\n')) as unknown as pg.QueryResult | pg.QueryResult[];
        results = Array.isArray(r) ? r : [r];
        if (results.length !== batch.reduce((n, j) => n + j.statements, 0)) throw new Error('a lock round trip answered a different number of statements than it sent');
      } catch (err) {
        await this.discard(client);
        for (const j of batch) j.reject(new StorageUnavailable(err));
        continue;
      }
      let at = 0;
      for (const j of batch) j.resolve({ client, results: results.slice(at, (at += j.statements)) });
    }
    this.#draining = false;
  }

  /**
   * Ends `c` and forgets it, when a lock query on it failed or timed out. pg's query_timeout only stops the
   * wait: the statement still runs on the server and may take the lock after we answered, and session locks
   * are re-entrant, so a lock taken then would never be released. Ending the session releases every lock it
   * held; the next acquire opens a new one.
   */
  async discard(c: pg.Client): Promise<void> {
    if (this.#client === c) this.#client = undefined;
    // end() waits for the server to close the session (its locks are then gone); bounded, for a dead network.
    await Promise.race([c.end().catch(() => {}), sleep(DISCARD_WAIT_MS, undefined, { ref: false })]);
  }

  /** True when `c` is still this session's live connection (its locks are still held). */
  holds(c: pg.Client): boolean {
    return this.#client === c;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const c = this.#client ?? await this.#connecting?.catch(() => undefined);
    this.#client = undefined;
    await c?.end().catch(() => {});
  }
}

export interface Held {
  /** The rows of each read, in order. */
  rows: unknown[][];
  release(): Promise<void>;
}

/**
 * A quoted literal for the simple-query text. Text PostgreSQL refuses (NUL, a lone surrogate) would fail the
 * whole round trip, other users' locks with it: it is refused here, for its caller alone (the exchange refuses
 * such input long before, so this is an invariant, not a check of requests).
 */
function literal(v: string): string {
  if (!storableText(v)) throw new Error('a user lock key or binding is not storable text');
  return pg.escapeLiteral(v);
}

/** `sql` with each `?` replaced by its binding as a quoted literal, for the simple-query protocol (no parameters). */
function inline(read: Statement): string {
  const parts = read.sql.split('?');
  if (parts.length !== read.bindings.length + 1) throw new Error('a locked read has as many ? as bindings');
  return parts.reduce((acc, part, i) => acc + literal(read.bindings[i - 1]!) + part);
}

function slotOf(key: string, n: number): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0;
  return Math.abs(h) % n;
}

/**
 * Serialises history-reading decisions per user, from reading the history until the decision's own
 * record has committed, so two conflicting requests (submit X, approve X) are never decided on the same
 * history. In this process a promise chain per user; across processes sharing PostgreSQL, a session
 * advisory lock. The locks live on a few dedicated sessions, never on pooled connections: a request that
 * holds a user's lock and then needs the pool for its history read and record can never wait on another
 * request that holds a pooled connection while waiting for a lock. The lock order is user, then ledger head.
 */
export class UserLocks {
  readonly #embedded: boolean;
  readonly #sessions: LockSession[];
  readonly #waitMs: number;
  readonly #tails = new Map<string, Promise<void>>();

  constructor(db: Db, options: UserLockOptions) {
    this.#embedded = isEmbedded(db) || !options.databaseUrl;
    const n = Math.max(1, options.sessions ?? DEFAULT_SESSIONS);
    this.#sessions = this.#embedded ? [] : Array.from({ length: n }, () => new LockSession(options.databaseUrl!));
    this.#waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  }

  /**
   * Takes `key`'s lock, then runs `reads` under it. Across processes the try-lock and the reads travel in one
   * round trip on the lock session: one simple-query message of several statements, which PostgreSQL runs in
   * order, each on a snapshot of its own (READ COMMITTED), so every read sees what committed before the lock
   * was taken. Reads that ran without the lock (another process held it) are thrown away and retried with it.
   */
  async acquire(key: string, reads: Statement[] = [], db?: Db): Promise<Held> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => { done = r; });
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    await previous;
    const releaseLocal = () => {
      done();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
    if (this.#embedded) {
      try {
        const rows = await runStatements(db!, reads);
        return { rows, release: async () => releaseLocal() };
      } catch (err) {
        releaseLocal();
        throw err;
      }
    }

    const session = this.#sessions[slotOf(key, this.#sessions.length)]!;
    let client: pg.Client;
    let rows: unknown[][];
    try {
      ({ client, rows } = await this.#lockAcross(session, key, reads));
    } catch (err) {
      releaseLocal();
      throw err;
    }
    return { rows, release: async () => {
      // The unlock is queued on the session, not awaited: this process's next try-lock for the user runs on the
      // same session after it (often in the same round trip), and another process retries until it has run. A
      // session that was lost took its locks with it; an unlock that fails or times out ends the session,
      // which releases them.
      if (session.holds(client)) session.run(`select pg_advisory_unlock(hashtextextended(${pg.escapeLiteral(key)}, 0))`, 1, client).catch(() => {});
      releaseLocal();
    } };
  }

  /** Takes the user's lock across processes with try-locks and a bounded, growing back-off. */
  async #lockAcross(session: LockSession, key: string, reads: Statement[]): Promise<{ client: pg.Client; rows: unknown[][] }> {
    const deadline = Date.now() + this.#waitMs;
    const text = [`select pg_try_advisory_lock(hashtextextended(${literal(key)}, 0)) as ok`, ...reads.map(inline)].join(';\n');
    let pause = 1;
    for (;;) {
      const { client, results } = await session.run(text, 1 + reads.length);
      const got = (results[0]?.rows[0] as { ok?: boolean } | undefined)?.ok === true;
      const rows = results.slice(1).map((x) => x.rows);
      if (got) return { client, rows };
      if (Date.now() >= deadline) throw new StorageUnavailable(new Error('another instance held this user\'s decision lock too long'));
      await sleep(pause);
      pause = Math.min(pause * 2, 25);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#sessions.map((s) => s.close()));
  }
}
