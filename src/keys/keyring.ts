import { createLocalJWKSet, importJWK, type CryptoKey, type JWK, type JWTVerifyGetKey } from 'jose';
import type { SigningAlg } from '../config/index.ts';
import type { Kek } from '../crypto/kek.ts';
import type { Db } from '../store/db.ts';

/** The algorithms intentgate signs its tokens with; verifying its own tokens accepts these and no others. */
export const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'EdDSA'];

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  publicJwk: JWK;
  privateJwk: JWK;
  activatesAt: number;
  /** When a later key took over signing; Infinity while this key is the newest active one. */
  supersededAt: number;
}

// Verifiers may see a token a little after it expires by their clock; keep retired keys this much longer.
const CLOCK_SKEW_MS = 60_000;

export function sealContext(kid: string): string {
  return `signing_key:${kid}`;
}

/**
 * The signing keys as the database holds them. Which key signs and which are published is computed
 * from timestamps at the moment of asking, so activation after the overlap needs no event: only a new
 * row (a rotation) needs `load()` again.
 */
export class Keyring {
  #keys: SigningKey[] = [];
  readonly #db: Db;
  readonly #kek: Kek;
  readonly #maxTokenTtlMs: number;

  constructor(db: Db, kek: Kek, maxTokenTtlSeconds: number) {
    this.#db = db;
    this.#kek = kek;
    this.#maxTokenTtlMs = maxTokenTtlSeconds * 1000;
  }

  async load(): Promise<void> {
    const rows = await this.#db('signing_keys').select('kid', 'alg', 'public_jwk', 'private_jwk_enc', 'activates_at').orderBy('activates_at', 'asc');
    const keys = rows.map((r): SigningKey => ({
      kid: r.kid,
      alg: r.alg,
      publicJwk: r.public_jwk,
      privateJwk: JSON.parse(this.#kek.open(r.private_jwk_enc, sealContext(r.kid))) as JWK,
      activatesAt: new Date(r.activates_at).getTime(),
      supersededAt: Infinity,
    }));
    for (let i = 0; i < keys.length - 1; i++) keys[i]!.supersededAt = keys[i + 1]!.activatesAt;
    this.#keys = keys;
  }

  get loaded(): boolean {
    return this.#keys.length > 0;
  }

  /** The key that signs now: the latest one whose overlap has passed. */
  active(now = Date.now()): SigningKey {
    let current: SigningKey | undefined;
    for (const k of this.#keys) if (k.activatesAt <= now) current = k;
    // Before the first key's activation (impossible for the first key, which activates at creation).
    current ??= this.#keys[0];
    if (!current) throw new Error('no signing key loaded');
    return current;
  }

  /** Keys verifiers need now: upcoming, active, and retired ones whose tokens may still be live. */
  published(now = Date.now()): SigningKey[] {
    const active = this.active(now);
    return this.#keys.filter((k) => k === active || k.activatesAt > now || k.supersededAt + this.#maxTokenTtlMs + CLOCK_SKEW_MS > now);
  }

  jwks(now = Date.now()): { keys: JWK[] } {
    return { keys: this.published(now).map((k) => k.publicJwk) };
  }

  /** A jose key resolver over the published keys, for verifying tokens this server issued. */
  verifier(now = Date.now()): JWTVerifyGetKey {
    const version = `${this.version}@${this.published(now).length}`;
    if (this.#verifier?.version !== version) this.#verifier = { version, get: createLocalJWKSet(this.jwks(now)) };
    return this.#verifier.get;
  }

  #verifier: { version: string; get: JWTVerifyGetKey } | undefined;
  readonly #imported = new Map<string, Promise<CryptoKey | Uint8Array>>();

  /** The private key for signing, imported once per kid. */
  privateKey(key: SigningKey): Promise<CryptoKey | Uint8Array> {
    let k = this.#imported.get(key.kid);
    if (!k) {
      k = importJWK(key.privateJwk, key.alg);
      this.#imported.set(key.kid, k);
    }
    return k;
  }

  /** Private keys that may sign without a reload: the active one and any upcoming. */
  signingCandidates(now = Date.now()): SigningKey[] {
    const active = this.active(now);
    return this.#keys.filter((k) => k === active || k.activatesAt > now);
  }

  /** Changes whenever the set of loaded keys changes; the provider is rebuilt when it does. */
  get version(): string {
    return this.#keys.map((k) => k.kid).join(',');
  }
}
