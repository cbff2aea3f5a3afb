import type { Bucket } from '../config/index.ts';

interface Rate { burst: number; perMs: number }

const rate = ({ burst, per_second }: Bucket): Rate => ({ burst, perMs: per_second / 1000 });

/**
 * Token buckets kept in this process's memory. With several instances each enforces its own share;
 * that bounds abuse per instance, which is what a limiter in front of the database needs to do.
 * One size for every key, or one size per kind of key: the part of the key before its first `:`
 * (e.g. `ip:` and `client:` at the token endpoint, which are sized differently).
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number; rate: Rate }>();
  readonly #rates: Rate | ReadonlyMap<string, Rate>;
  readonly #maxKeys: number;

  constructor(buckets: Bucket | Record<string, Bucket>, maxKeys = 100_000) {
    this.#rates = 'burst' in buckets && typeof buckets.burst === 'number'
      ? rate(buckets as Bucket)
      : new Map(Object.entries(buckets as Record<string, Bucket>).map(([kind, b]) => [kind, rate(b)]));
    this.#maxKeys = maxKeys;
  }

  #rateOf(key: string): Rate {
    if (!(this.#rates instanceof Map)) return this.#rates as Rate;
    const r = this.#rates.get(key.slice(0, key.indexOf(':')));
    if (!r) throw new Error(`no rate limit is configured for ${key.slice(0, key.indexOf(':') + 1) || 'keys without a kind'}`);
    return r;
  }

  /** Takes one token for `key`; when none is left, says how many seconds until one is. */
  take(key: string, now = Date.now()): { ok: true } | { ok: false; retryAfter: number } {
    let b = this.#buckets.get(key);
    if (b) {
      // A wall clock stepped back refills nothing, and must not drain every bucket either.
      b.tokens = Math.min(b.rate.burst, b.tokens + Math.max(0, now - b.at) * b.rate.perMs);
      b.at = now;
    } else {
      const r = this.#rateOf(key);
      if (this.#buckets.size >= this.#maxKeys) this.#evictFull(now);
      b = { tokens: r.burst, at: now, rate: r };
      this.#buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / b.rate.perMs / 1000)) };
  }

  // Buckets that have refilled carry no state worth keeping.
  #evictFull(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + Math.max(0, now - b.at) * b.rate.perMs >= b.rate.burst) this.#buckets.delete(key);
    }
    if (this.#buckets.size >= this.#maxKeys) this.#buckets.clear();
  }
}
