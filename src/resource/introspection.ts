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
 * authority for every other claim.
 */
export class Introspector {
  readonly #options: IntrospectorOptions;
  readonly #cache = new Map<string, Cached>();

  constructor(options: IntrospectorOptions) {
    this.#options = options;
  }

  /** Whether intentgate says the token is live; `fresh` skips the cache. Throws IntrospectionUnavailable. */
  async active(token: string, expiresAt: number, fresh: boolean): Promise<boolean> {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = Date.now();
    const hit = this.#cache.get(key);
    if (hit && hit.until > now && !fresh) return hit.active;
    const active = await this.#ask(token);
    this.#remember(key, active, Math.min(now + this.#options.cacheSeconds * 1000, expiresAt * 1000), now);
    return active;
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

  #remember(key: string, active: boolean, until: number, now: number): void {
    if (until <= now) return;
    if (this.#cache.size >= this.#options.maxEntries) {
      for (const [k, v] of this.#cache) if (v.until <= now) this.#cache.delete(k);
      // Dropping a cached answer only costs another introspection, so evicting the oldest is safe.
      if (this.#cache.size >= this.#options.maxEntries) this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.delete(key);
    this.#cache.set(key, { active, until });
  }
}
