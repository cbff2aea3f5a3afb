import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Db } from './db.ts';
import { rethrowAsStorageFailure } from './errors.ts';

/** The tables src/store owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['oidc_payloads'] as const;

export type ClientLookup = (clientId: string) => Promise<Record<string, unknown> | undefined>;

/** Runs a storage call, turning "the database is not there" into StorageUnavailable for the edge to map. */
async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    return rethrowAsStorageFailure(err);
  }
}

/**
 * oidc-provider's storage on knex: one table for every model it persists, keyed by (model, id), with
 * the lookups it needs indexed. Clients are not stored here: they come from the registry.
 */
export function createOidcAdapter(db: Db, lookupClient: ClientLookup): new (model: string) => Adapter {
  return class KnexAdapter implements Adapter {
    readonly model: string;
    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are managed through the admin API');
      const row = {
        model: this.model,
        id,
        payload: JSON.stringify(payload),
        grant_id: payload.grantId ?? null,
        user_code: payload.userCode ?? null,
        uid: payload.uid ?? null,
        expires_at: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
      };
      await guarded(() => db('oidc_payloads').insert(row).onConflict(['model', 'id']).merge());
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return guarded(() => lookupClient(id)) as Promise<AdapterPayload | undefined>;
      return this.#findBy({ id });
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.#findBy({ user_code: userCode });
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.#findBy({ uid });
    }

    async consume(id: string): Promise<void> {
      await guarded(() => db('oidc_payloads').where({ model: this.model, id }).update({ consumed_at: new Date() }));
    }

    async destroy(id: string): Promise<void> {
      await guarded(() => db('oidc_payloads').where({ model: this.model, id }).delete());
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await guarded(() => db('oidc_payloads').where({ grant_id: grantId }).delete());
    }

    async #findBy(where: Record<string, string>): Promise<AdapterPayload | undefined> {
      const row = await guarded(() => db('oidc_payloads')
        .where({ model: this.model, ...where })
        .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', new Date()))
        .first('payload', 'consumed_at'));
      if (!row) return undefined;
      const payload = row.payload as AdapterPayload;
      return row.consumed_at ? { ...payload, consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) } : payload;
    }
  };
}

/**
 * Records (model, id) until `expiresAt`, once, atomically across every process sharing the database: false
 * when a record of it is still unexpired (a replay). An expired record is taken over.
 */
export async function recordOnce(db: Db, model: string, id: string, payload: Record<string, unknown>, expiresAt: Date): Promise<boolean> {
  const fresh = await db('oidc_payloads')
    .insert({ model, id, payload: JSON.stringify(payload), expires_at: expiresAt })
    .onConflict(['model', 'id']).merge(['payload', 'expires_at'])
    .where('oidc_payloads.expires_at', '<=', new Date())
    .returning('id');
  return fresh.length > 0;
}

/** Deletes expired rows; run periodically. Returns how many went. */
export async function sweepOidcPayloads(db: Db): Promise<number> {
  const rows = await db('oidc_payloads').where('expires_at', '<', new Date()).delete().returning('id');
  return rows.length;
}
