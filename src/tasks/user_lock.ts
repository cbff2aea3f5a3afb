import type { Db } from '../store/db.ts';
import { isEmbedded } from '../store/db.ts';

/**
 * Serialises history-reading decisions per user, from reading the history until the decision's own
 * record has committed, so two conflicting requests (submit X, approve X) are never decided on the same
 * history. In this process a promise chain per user; across processes sharing PostgreSQL, a session
 * advisory lock held on a connection of its own. The lock order is user, then ledger head.
 */
export class UserLocks {
  readonly #db: Db;
  readonly #tails = new Map<string, Promise<void>>();

  constructor(db: Db) {
    this.#db = db;
  }

  async acquire(key: string): Promise<() => Promise<void>> {
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
    if (isEmbedded(this.#db)) return async () => releaseLocal();
    let conn: unknown;
    try {
      conn = await this.#db.client.acquireConnection();
      await this.#db.raw('select pg_advisory_lock(hashtextextended(?, 0))', [key]).connection(conn);
    } catch (err) {
      if (conn) await this.#db.client.releaseConnection(conn);
      releaseLocal();
      throw err;
    }
    return async () => {
      try {
        await this.#db.raw('select pg_advisory_unlock(hashtextextended(?, 0))', [key]).connection(conn);
      } finally {
        await this.#db.client.releaseConnection(conn);
        releaseLocal();
      }
    };
  }
}
