export type ReplayVerdict = 'fresh' | 'replay' | 'full';

/**
 * DPoP proof `jti`s seen within their acceptance window, in memory (one process). Entries expire when
 * the proof would be refused as too old anyway. The size is bounded; when every slot holds a live
 * entry the answer is 'full' and the caller refuses the request: forgetting a live entry would let
 * that proof be replayed, so a full cache fails closed instead.
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Records `key` until `expiresAt` (ms) unless it is already there. */
  check(key: string, expiresAt: number, now = Date.now()): ReplayVerdict {
    const until = this.#seen.get(key);
    if (until !== undefined && until > now) return 'replay';
    this.#dropExpiredHead(now);
    if (this.#seen.size >= this.#maxEntries) {
      this.#dropAllExpired(now);
      if (this.#seen.size >= this.#maxEntries) return 'full';
    }
    this.#seen.delete(key);
    this.#seen.set(key, expiresAt);
    return 'fresh';
  }

  // Insertion order is roughly expiry order, so the head is where expired entries gather; cheap per call.
  #dropExpiredHead(now: number): void {
    for (const [key, until] of this.#seen) {
      if (until > now) return;
      this.#seen.delete(key);
    }
  }

  // Only when full: a linear sweep, amortised over the many insertions that filled the cache.
  #dropAllExpired(now: number): void {
    for (const [key, until] of this.#seen) if (until <= now) this.#seen.delete(key);
  }
}
