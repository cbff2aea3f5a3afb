import type { Db } from '../store/db.ts';
import { appendEntry } from '../ledger/append.ts';
import { registryChanged } from './changes.ts';
import { checkAbsoluteUri, isUniqueViolation, iso } from '../validate/common.ts';
import { checkPublicJwks, jwksSchema, type PublicJwks } from './jwks.ts';
import { paginate, type Page, type PageParams } from './pagination.ts';
import { check, compileSchema, ValidationError } from '../validate/schema.ts';

/** The tables src/registry owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['issuers'] as const;

// Asymmetric algorithms only: a shared secret with an outside issuer would let either side mint tokens.
export const ISSUER_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

export interface TrustedIssuer {
  issuer: string;
  jwks: PublicJwks | null;
  jwks_uri: string | null;
  algorithms: string[];
  audiences: string[];
  typs: string[];
  scope_claim: 'scope' | 'scp';
  created_at: string;
  updated_at: string;
}

const fields = {
  jwks: { oneOf: [{ type: 'null' }, jwksSchema] },
  jwks_uri: { type: ['string', 'null'], maxLength: 2000 },
  algorithms: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...ISSUER_ALGORITHMS] } },
  audiences: { type: 'array', minItems: 1, maxItems: 50, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 2000 } },
  typs: { type: 'array', minItems: 1, maxItems: 10, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z0-9.+/-]{1,64}$' } },
  scope_claim: { enum: ['scope', 'scp'] },
};
const validateCreate = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['issuer', 'audiences'],
  properties: { issuer: { type: 'string', minLength: 1, maxLength: 2000 }, ...fields },
});
const validatePatch = compileSchema({ type: 'object', additionalProperties: false, minProperties: 1, properties: fields });

type Fields = {
  jwks?: PublicJwks | null;
  jwks_uri?: string | null;
  algorithms?: string[];
  audiences?: string[];
  typs?: string[];
  scope_claim?: 'scope' | 'scp';
};

export function toIssuer(row: Record<string, unknown>): TrustedIssuer {
  return {
    issuer: row.issuer as string,
    jwks: (row.jwks as PublicJwks | null) ?? null,
    jwks_uri: (row.jwks_uri as string | null) ?? null,
    algorithms: row.algorithms as string[],
    audiences: row.audiences as string[],
    typs: row.typs as string[],
    scope_claim: row.scope_claim as 'scope' | 'scp',
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

async function checkKeys(c: Fields): Promise<void> {
  if (!c.jwks === !c.jwks_uri) throw new ValidationError('exactly one of jwks and jwks_uri is required', c.jwks ? 'jwks_uri' : 'jwks');
  if (c.jwks) await checkPublicJwks(c.jwks, 'jwks');
  if (c.jwks_uri) checkAbsoluteUri(c.jwks_uri, 'jwks_uri');
}

function row(c: Required<Fields>) {
  return {
    jwks: c.jwks ? JSON.stringify(c.jwks) : null,
    jwks_uri: c.jwks_uri,
    algorithms: JSON.stringify(c.algorithms),
    audiences: JSON.stringify(c.audiences),
    typs: JSON.stringify(c.typs),
    scope_claim: c.scope_claim,
  };
}

export async function createIssuer(db: Db, body: unknown, actor: string): Promise<TrustedIssuer> {
  const input = check<Fields & { issuer: string }>(validateCreate, body);
  checkAbsoluteUri(input.issuer, 'issuer');
  const c: Required<Fields> = {
    jwks: input.jwks ?? null,
    jwks_uri: input.jwks_uri ?? null,
    algorithms: input.algorithms ?? ['RS256', 'ES256'],
    audiences: input.audiences!,
    typs: input.typs ?? ['JWT', 'at+jwt'],
    scope_claim: input.scope_claim ?? 'scope',
  };
  await checkKeys(c);
  const now = new Date();
  try {
    return await db.transaction(async (trx) => {
      const [r] = await trx('issuers').insert({ issuer: input.issuer, ...row(c), created_at: now, updated_at: now }).returning('*');
      await appendEntry(trx, { kind: 'admin.issuer.created', actor, payload: { issuer: input.issuer, ...c } });
      await registryChanged(trx, 'issuers');
      return toIssuer(r);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new ValidationError(`issuer ${input.issuer} is already trusted`, 'issuer', 409, 'conflict');
    throw err;
  }
}

export async function getIssuer(db: Db, issuer: string): Promise<TrustedIssuer | undefined> {
  const r = await db('issuers').where({ issuer }).first();
  return r ? toIssuer(r) : undefined;
}

export async function listIssuers(db: Db, page: PageParams): Promise<Page<TrustedIssuer>> {
  return paginate(db('issuers').select('*'), 'issuer', page, toIssuer);
}

export async function updateIssuer(db: Db, issuer: string, body: unknown, actor: string): Promise<TrustedIssuer | undefined> {
  const input = check<Fields>(validatePatch, body);
  return db.transaction(async (trx) => {
    const current = await trx('issuers').where({ issuer }).forUpdate().first();
    if (!current) return undefined;
    const before = toIssuer(current);
    const c: Required<Fields> = {
      jwks: input.jwks !== undefined ? input.jwks : before.jwks,
      jwks_uri: input.jwks_uri !== undefined ? input.jwks_uri : before.jwks_uri,
      algorithms: input.algorithms ?? before.algorithms,
      audiences: input.audiences ?? before.audiences,
      typs: input.typs ?? before.typs,
      scope_claim: input.scope_claim ?? before.scope_claim,
    };
    await checkKeys(c);
    const [r] = await trx('issuers').where({ issuer }).update({ ...row(c), updated_at: new Date() }).returning('*');
    await appendEntry(trx, { kind: 'admin.issuer.updated', actor, payload: { issuer, changes: input } });
    await registryChanged(trx, 'issuers');
    return toIssuer(r);
  });
}

export async function deleteIssuer(db: Db, issuer: string, actor: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const gone = await trx('issuers').where({ issuer }).delete().returning('issuer');
    if (gone.length === 0) return false;
    await appendEntry(trx, { kind: 'admin.issuer.deleted', actor, payload: { issuer } });
    await registryChanged(trx, 'issuers');
    return true;
  });
}
