import { randomBytes } from 'node:crypto';
import type { Kek } from '../crypto/kek.ts';
import { appendEntry } from '../ledger/append.ts';
import { registryChanged } from './changes.ts';
import type { Db } from '../store/db.ts';
import { checkAbsoluteUri, ID_PATTERN, isUniqueViolation, iso, SCOPE_STRING } from '../validate/common.ts';
import { checkPublicJwks, jwksSchema, type PublicJwks } from './jwks.ts';
import { paginate, type Page, type PageParams } from './pagination.ts';
import { check, compileSchema, ValidationError } from '../validate/schema.ts';

/** The tables src/registry owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['clients'] as const;

export const GRANT_CLIENT_CREDENTIALS = 'client_credentials';
export const GRANT_TOKEN_EXCHANGE_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const SUPPORTED_GRANT_TYPES = [GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE_TYPE] as const;
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;
type AuthMethod = (typeof AUTH_METHODS)[number];

export interface Client {
  client_id: string;
  client_name: string | null;
  grant_types: string[];
  scope: string;
  token_endpoint_auth_method: AuthMethod;
  jwks: PublicJwks | null;
  resource_server: string | null;
  created_at: string;
  updated_at: string;
}

const fields = {
  client_name: { type: ['string', 'null'], maxLength: 200, format: 'visible-text' },
  grant_types: { type: 'array', minItems: 1, maxItems: 10, uniqueItems: true, items: { enum: [...SUPPORTED_GRANT_TYPES] } },
  scope: { type: 'string', maxLength: 4000, pattern: SCOPE_STRING },
  token_endpoint_auth_method: { enum: [...AUTH_METHODS] },
  jwks: { oneOf: [{ type: 'null' }, jwksSchema] },
  resource_server: { type: ['string', 'null'], maxLength: 2000 },
};
const validateCreate = compileSchema({
  type: 'object',
  additionalProperties: false,
  properties: { client_id: { type: 'string', pattern: ID_PATTERN }, ...fields },
});
const validatePatch = compileSchema({ type: 'object', additionalProperties: false, minProperties: 1, properties: fields });

type Fields = {
  client_name?: string | null;
  grant_types?: string[];
  scope?: string;
  token_endpoint_auth_method?: AuthMethod;
  jwks?: PublicJwks | null;
  resource_server?: string | null;
};

function secretContext(clientId: string): string {
  return `client_secret:${clientId}`;
}

function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

function usesSecret(method: AuthMethod): boolean {
  return method !== 'private_key_jwt';
}

export function toClient(row: Record<string, unknown>): Client {
  return {
    client_id: row.client_id as string,
    client_name: (row.client_name as string | null) ?? null,
    grant_types: row.grant_types as string[],
    scope: row.scope as string,
    token_endpoint_auth_method: row.token_endpoint_auth_method as AuthMethod,
    jwks: (row.jwks as PublicJwks | null) ?? null,
    resource_server: (row.resource_server as string | null) ?? null,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** Checks the client as a whole, after defaults and a patch have been applied. */
async function checkCombined(db: Db, c: Required<Fields>): Promise<void> {
  if (c.token_endpoint_auth_method === 'private_key_jwt' && !c.jwks) {
    throw new ValidationError('jwks is required when token_endpoint_auth_method is private_key_jwt', 'jwks');
  }
  if (c.jwks) await checkPublicJwks(c.jwks, 'jwks');
  if (c.resource_server) {
    checkAbsoluteUri(c.resource_server, 'resource_server');
    const exists = await db('resources').where({ identifier: c.resource_server }).first('identifier');
    if (!exists) throw new ValidationError(`resource_server ${c.resource_server} is not a registered resource`, 'resource_server');
  }
}

export async function createClient(db: Db, kek: Kek, body: unknown, actor: string): Promise<Client & { client_secret?: string; client_id_issued_at: number; client_secret_expires_at?: number }> {
  const input = check<Fields & { client_id?: string }>(validateCreate, body);
  const clientId = input.client_id ?? `c_${randomBytes(12).toString('base64url')}`;
  const c: Required<Fields> = {
    client_name: input.client_name ?? null,
    grant_types: input.grant_types ?? [GRANT_CLIENT_CREDENTIALS],
    scope: input.scope ?? '',
    token_endpoint_auth_method: input.token_endpoint_auth_method ?? 'client_secret_basic',
    jwks: input.jwks ?? null,
    resource_server: input.resource_server ?? null,
  };
  await checkCombined(db, c);
  const secret = usesSecret(c.token_endpoint_auth_method) ? newSecret() : undefined;
  const now = new Date();
  try {
    const client = await db.transaction(async (trx) => {
      const [row] = await trx('clients').insert({
        client_id: clientId,
        client_name: c.client_name,
        grant_types: JSON.stringify(c.grant_types),
        scope: c.scope,
        token_endpoint_auth_method: c.token_endpoint_auth_method,
        jwks: c.jwks ? JSON.stringify(c.jwks) : null,
        resource_server: c.resource_server,
        secret_enc: secret ? kek.seal(secret, secretContext(clientId)) : null,
        created_at: now,
        updated_at: now,
      }).returning('*');
      await appendEntry(trx, { kind: 'admin.client.created', actor, payload: { client_id: clientId, ...c } });
      await registryChanged(trx, 'clients');
      return toClient(row);
    });
    return {
      ...client,
      client_id_issued_at: Math.floor(now.getTime() / 1000),
      ...(secret ? { client_secret: secret, client_secret_expires_at: 0 } : {}),
    };
  } catch (err) {
    if (isUniqueViolation(err)) throw new ValidationError(`a client with client_id ${clientId} exists`, 'client_id', 409, 'conflict');
    throw err;
  }
}

export async function getClient(db: Db, clientId: string): Promise<Client | undefined> {
  const row = await db('clients').where({ client_id: clientId }).first();
  return row ? toClient(row) : undefined;
}

export async function listClients(db: Db, page: PageParams, filter: { grant_type?: string; resource_server?: string }): Promise<Page<Client>> {
  const q = db('clients').select('*');
  if (filter.grant_type !== undefined) q.whereRaw('grant_types @> ?::jsonb', [JSON.stringify([filter.grant_type])]);
  if (filter.resource_server !== undefined) q.where({ resource_server: filter.resource_server });
  return paginate(q, 'client_id', page, toClient);
}

export async function updateClient(db: Db, kek: Kek, clientId: string, body: unknown, actor: string): Promise<(Client & { client_secret?: string }) | undefined> {
  const input = check<Fields>(validatePatch, body);
  return db.transaction(async (trx) => {
    const current = await trx('clients').where({ client_id: clientId }).forUpdate().first();
    if (!current) return undefined;
    const before = toClient(current);
    const c: Required<Fields> = {
      client_name: input.client_name !== undefined ? input.client_name : before.client_name,
      grant_types: input.grant_types ?? before.grant_types,
      scope: input.scope ?? before.scope,
      token_endpoint_auth_method: input.token_endpoint_auth_method ?? before.token_endpoint_auth_method,
      jwks: input.jwks !== undefined ? input.jwks : before.jwks,
      resource_server: input.resource_server !== undefined ? input.resource_server : before.resource_server,
    };
    await checkCombined(trx, c);
    // Switching to a secret-based method needs a secret; switching away from one discards it.
    let secret: string | undefined;
    let secretEnc: string | null = current.secret_enc ?? null;
    if (usesSecret(c.token_endpoint_auth_method) && !secretEnc) {
      secret = newSecret();
      secretEnc = kek.seal(secret, secretContext(clientId));
    } else if (!usesSecret(c.token_endpoint_auth_method)) {
      secretEnc = null;
    }
    const [row] = await trx('clients').where({ client_id: clientId }).update({
      client_name: c.client_name,
      grant_types: JSON.stringify(c.grant_types),
      scope: c.scope,
      token_endpoint_auth_method: c.token_endpoint_auth_method,
      jwks: c.jwks ? JSON.stringify(c.jwks) : null,
      resource_server: c.resource_server,
      secret_enc: secretEnc,
      updated_at: new Date(),
    }).returning('*');
    await appendEntry(trx, { kind: 'admin.client.updated', actor, payload: { client_id: clientId, changes: input } });
    await registryChanged(trx, 'clients');
    return { ...toClient(row), ...(secret ? { client_secret: secret } : {}) };
  });
}

export async function rotateClientSecret(db: Db, kek: Kek, clientId: string, actor: string): Promise<(Client & { client_secret: string }) | undefined> {
  return db.transaction(async (trx) => {
    const current = await trx('clients').where({ client_id: clientId }).forUpdate().first();
    if (!current) return undefined;
    if (!usesSecret(current.token_endpoint_auth_method)) {
      throw new ValidationError('this client authenticates with private_key_jwt and has no secret', 'token_endpoint_auth_method', 409, 'conflict');
    }
    const secret = newSecret();
    const [row] = await trx('clients').where({ client_id: clientId })
      .update({ secret_enc: kek.seal(secret, secretContext(clientId)), updated_at: new Date() }).returning('*');
    await appendEntry(trx, { kind: 'admin.client.secret_rotated', actor, payload: { client_id: clientId } });
    await registryChanged(trx, 'clients');
    return { ...toClient(row), client_secret: secret };
  });
}

export async function deleteClient(db: Db, clientId: string, actor: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const gone = await trx('clients').where({ client_id: clientId }).delete().returning('client_id');
    if (gone.length === 0) return false;
    await appendEntry(trx, { kind: 'admin.client.deleted', actor, payload: { client_id: clientId } });
    await registryChanged(trx, 'clients');
    return true;
  });
}

/** The client as oidc-provider wants it, from its stored row, secret decrypted. */
export function providerMetadata(kek: Kek, row: Record<string, unknown>): Record<string, unknown> {
  const clientId = row.client_id as string;
  return {
    client_id: clientId,
    ...(row.secret_enc ? { client_secret: kek.open(row.secret_enc as string, secretContext(clientId)) } : {}),
    ...(row.client_name ? { client_name: row.client_name } : {}),
    grant_types: row.grant_types,
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: row.token_endpoint_auth_method,
    ...(row.jwks ? { jwks: row.jwks } : {}),
  };
}
