import { createHash } from 'node:crypto';
import { basicAuthorization, type ClientCredentials } from './client_auth.ts';

/** Introspection could not say whether the token is live: the caller must refuse the token. */
export class IntrospectionUnavailable extends Error {}

export interface IntrospectorOptions {
  endpoint: string;
  credentials: ClientCredentials;
  /** How long an answer is reused; 0 asks every time. */
  cacheSeconds: number;
  timeoutMs: number;
  maxEntries: number;
}

interface Cached {
  active: boolean;
  until: number;
}

/**
 * RFC 7662 status checks with a short per-token cache, so a revocation is seen within `cacheSeconds`.
 * Tokens are cached under their SHA-256, never in clear. Only `active` is used: the JWT itself is the
 * authority for every other claim. Concurrent misses for one token share one request.
 */
export class Introspector {
  readonly #options: IntrospectorOptions;
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<boolean>>();

  constructor(options: IntrospectorOptions) {
    this.#options = options;
  }

  /** Whether intentgate says the token is live; `fresh` skips the cache. Throws IntrospectionUnavailable. */
  async active(token: string, expiresAt: number, fresh: boolean): Promise<boolean> {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = Date.now();
    if (!fresh) {
      const hit = this.#cache.get(key);
      if (hit && hit.until > now) return hit.active;
      if (hit) this.#cache.delete(key);
      // A fresh caller never joins: a request already under way may predate a revocation it must see.
      const pending = this.#inflight.get(key);
      if (pending) return pending;
    }
    const asked = this.#ask(token).then((active) => {
      this.#remember(key, active, Math.min(now + this.#options.cacheSeconds * 1000, expiresAt * 1000), now);
      return active;
    });
    this.#inflight.set(key, asked);
    // Only the latest request for a token is joined; the cleanup must not itself reject unhandled.
    asked.finally(() => { if (this.#inflight.get(key) === asked) this.#inflight.delete(key); }).catch(() => undefined);
    return asked;
  }

  async #ask(token: string): Promise<boolean> {
    let res: Response;
    try {
      res = await fetch(this.#options.endpoint, {
        method: 'POST',
        headers: {
          authorization: basicAuthorization(this.#options.credentials),
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
        signal: AbortSignal.timeout(this.#options.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      throw new IntrospectionUnavailable('token introspection is unreachable', { cause: err });
    }
    // Anything but a well-formed 200 (5xx, or 401 for a misconfigured secret) leaves the status unknown.
    const body: unknown = await res.json().catch(() => undefined);
    if (res.status !== 200) throw new IntrospectionUnavailable(`token introspection answered ${res.status}`);
    if (typeof body !== 'object' || body === null || typeof (body as { active?: unknown }).active !== 'boolean') {
      throw new IntrospectionUnavailable('token introspection answered without a boolean active');
    }
    return (body as { active: boolean }).active;
  }

  // Oldest first, by insertion: dropping a cached answer only costs another introspection, so no scan
  // for expired entries is needed; those left behind are removed when looked up or pushed out.
  #remember(key: string, active: boolean, until: number, now: number): void {
    this.#cache.delete(key);
    if (until <= now) return;
    while (this.#cache.size >= this.#options.maxEntries) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, { active, until });
  }
}
