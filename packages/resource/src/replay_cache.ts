export type ReplayVerdict = 'fresh' | 'replay' | 'key_over_share' | 'full';

export interface ReplayCacheOptions {
  /** Proofs remembered at most, across all keys. */
  maxEntries: number;
  /** Proofs remembered at most per key thumbprint, so one key cannot take the cache from the others. */
  maxPerKey: number;
  /** Milliseconds an entry is kept: long enough that the proof would be refused as too old by then. */
  lifetimeMs: number;
}

interface Entry {
  jkt: string;
  until: number;
}

/**
 * DPoP proof `jti`s seen within their acceptance window, in memory (one process), per key (`jkt`).
 * Every entry lives `lifetimeMs` from its insertion, so insertion order is expiry order: expired
 * entries are dropped from the front, never by a scan. When an entry is still live it cannot be
 * forgotten (that proof could be replayed), so a full cache refuses instead: 'key_over_share' when
 * this key holds its share, which refuses that key only, and 'full' when all keys together fill it.
 */
export class ReplayCache {
  readonly #seen = new Map<string, Entry>();
  readonly #perKey = new Map<string, number>();
  readonly #options: ReplayCacheOptions;

  constructor(options: ReplayCacheOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#seen.size;
  }

  get lifetimeMs(): number {
    return this.#options.lifetimeMs;
  }

  /** Whether the proof was already recorded; records nothing, so it can run before the token is known live. */
  seen(jkt: string, jti: string, now = Date.now()): boolean {
    const entry = this.#seen.get(`${jkt}:${jti}`);
    return entry !== undefined && entry.until > now;
  }

  /** Records the proof unless it is already there or there is no room for it. */
  record(jkt: string, jti: string, now = Date.now()): ReplayVerdict {
    this.#dropExpired(now);
    // A jkt is a base64url thumbprint (no ':'), so the key is unambiguous.
    const key = `${jkt}:${jti}`;
    if (this.#seen.has(key)) return 'replay';
    const mine = this.#perKey.get(jkt) ?? 0;
    if (mine >= this.#options.maxPerKey) return 'key_over_share';
    if (this.#seen.size >= this.#options.maxEntries) return 'full';
    this.#seen.set(key, { jkt, until: now + this.#options.lifetimeMs });
    this.#perKey.set(jkt, mine + 1);
    return 'fresh';
  }

  // Stops at the first live entry; if the clock went back, entries are kept longer, never dropped early.
  #dropExpired(now: number): void {
    for (const [key, entry] of this.#seen) {
      if (entry.until > now) return;
      this.#seen.delete(key);
      const left = this.#perKey.get(entry.jkt)! - 1;
      if (left === 0) this.#perKey.delete(entry.jkt);
      else this.#perKey.set(entry.jkt, left);
    }
  }
}
