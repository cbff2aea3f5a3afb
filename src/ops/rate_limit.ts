import type { Bucket } from '../config/index.ts';

/**
 * Token buckets kept in this process's memory. With several instances each enforces its own share;
 * that bounds abuse per instance, which is what a limiter in front of the database needs to do.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #burst: number;
  readonly #perMs: number;
  readonly #maxKeys: number;

  constructor({ burst, per_second }: Bucket, maxKeys = 100_000) {
    this.#burst = burst;
    this.#perMs = per_second / 1000;
    this.#maxKeys = maxKeys;
  }

  /** Takes one token for `key`; when none is left, says how many seconds until one is. */
  take(key: string, now = Date.now()): { ok: true } | { ok: false; retryAfter: number } {
    let b = this.#buckets.get(key);
    if (b) {
      // A wall clock stepped back refills nothing, and must not drain every bucket either.
      b.tokens = Math.min(this.#burst, b.tokens + Math.max(0, now - b.at) * this.#perMs);
      b.at = now;
    } else {
      if (this.#buckets.size >= this.#maxKeys) this.#evictFull(now);
      b = { tokens: this.#burst, at: now };
      this.#buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / this.#perMs / 1000)) };
  }

  // Buckets that have refilled carry no state worth keeping.
  #evictFull(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + Math.max(0, now - b.at) * this.#perMs >= this.#burst) this.#buckets.delete(key);
    }
    if (this.#buckets.size >= this.#maxKeys) this.#buckets.clear();
  }
}
