import type { SigningAlg } from '../config/index.ts';
import type { Kek } from '../crypto/kek.ts';
import { appendEntry } from '../ledger/append.ts';
import type { Db } from '../store/db.ts';
import { notify } from '../store/notify.ts';
import { generateSigningKey } from './generate.ts';
import { sealContext } from './keyring.ts';

/** The tables src/keys owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['signing_keys'] as const;

export const KEYS_CHANNEL = 'intentgate_keys';
// Serialises key creation across processes sharing one database.
const KEYS_LOCK = 0x1a7e_0001;

async function insertKey(trx: Db, kek: Kek, alg: SigningAlg, activatesAt: Date, actor: string): Promise<string> {
  const key = await generateSigningKey(alg);
  await trx('signing_keys').insert({
    kid: key.kid,
    alg: key.alg,
    public_jwk: JSON.stringify(key.publicJwk),
    private_jwk_enc: kek.seal(JSON.stringify(key.privateJwk), sealContext(key.kid)),
    created_at: new Date(),
    activates_at: activatesAt,
    created_by: actor,
  });
  return key.kid;
}

/** Creates the first signing key if there is none. Returns its kid when one was created. */
export async function ensureSigningKey(db: Db, kek: Kek, alg: SigningAlg): Promise<string | undefined> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [KEYS_LOCK]);
    const existing = await trx('signing_keys').first('kid');
    if (existing) return undefined;
    const kid = await insertKey(trx, kek, alg, new Date(), 'system');
    await appendEntry(trx, { kind: 'keys.created', actor: 'system', payload: { kid, alg } });
    return kid;
  });
}

/**
 * Why an overlap is too short to rotate with, or undefined. Resource servers must fetch the new key before
 * it signs: one that fetched the JWKS just before the rotation refetches no sooner than its cooldown (jose's
 * remote JWKS: 30 s), so a shorter overlap makes it reject every new token until then.
 */
export function overlapTooShort(overlapSeconds: number, minimum: number): string | undefined {
  if (overlapSeconds >= minimum) return undefined;
  return `the overlap must be at least ${minimum} s (keys.min_rotation_overlap): resource servers need that long to fetch the new key before it signs`;
}

/**
 * Adds a new key, published at once and signing after `overlapSeconds`, so that resource servers
 * caching JWKS learn it before they see tokens signed with it. Other processes hear of it by NOTIFY.
 */
export async function rotateSigningKey(db: Db, kek: Kek, alg: SigningAlg, overlapSeconds: number, actor: string): Promise<{ kid: string; activates_at: string }> {
  const activatesAt = new Date(Date.now() + overlapSeconds * 1000);
  const kid = await db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [KEYS_LOCK]);
    const kid = await insertKey(trx, kek, alg, activatesAt, actor);
    await appendEntry(trx, { kind: 'keys.rotated', actor, payload: { kid, alg, activates_at: activatesAt.toISOString() } });
    await notify(trx, KEYS_CHANNEL, kid);
    return kid;
  });
  return { kid, activates_at: activatesAt.toISOString() };
}
