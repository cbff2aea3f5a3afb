import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { appendEntry } from '../ledger/append.ts';
import type { Db } from '../store/db.ts';
import { iso } from './common.ts';
import { paginate, type Page, type PageParams } from './pagination.ts';
import { check, compileSchema, ValidationError } from './validate.ts';

export interface Admin { id: string; name: string; created_at: string; created_by: string | null; revoked_at: string | null; user: { issuer: string; sub: string } | null }
export interface AdminIdentity { id: string; name: string; user_issuer: string | null; user_sub: string | null }

const TOKEN_PREFIX = 'iga_';
const validateCreate = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200, format: 'visible-text' },
    // The person behind the credential, as users are identified: a reviewer never reviews their own requests.
    user: {
      type: 'object', additionalProperties: false, required: ['issuer', 'sub'],
      properties: { issuer: { type: 'string', minLength: 1, maxLength: 2000 }, sub: { type: 'string', minLength: 1, maxLength: 1000 } },
    },
  },
});

// Admin tokens are 256-bit random values, so a plain SHA-256 is a sound verifier; no slow hash needed.
function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function toAdmin(row: Record<string, unknown>): Admin {
  return {
    id: row.id as string,
    name: row.name as string,
    created_at: iso(row.created_at),
    created_by: (row.created_by as string | null) ?? null,
    revoked_at: row.revoked_at ? iso(row.revoked_at) : null,
    user: row.user_sub ? { issuer: row.user_issuer as string, sub: row.user_sub as string } : null,
  };
}

async function insertAdmin(trx: Db, name: string, token: string, actor: string, bootstrap: boolean, user?: { issuer: string; sub: string }): Promise<Admin> {
  const [row] = await trx('admins').insert({
    id: `adm_${randomUUID()}`,
    name,
    user_issuer: user?.issuer ?? null,
    user_sub: user?.sub ?? null,
    token_hash: hashToken(token),
    bootstrap,
    created_at: new Date(),
    created_by: actor,
  }).returning('*');
  await appendEntry(trx, { kind: 'admin.admin.created', actor, payload: { id: row.id, name } });
  return toAdmin(row);
}

export async function createAdmin(db: Db, body: unknown, actor: string): Promise<Admin & { token: string }> {
  const { name, user } = check<{ name: string; user?: { issuer: string; sub: string } }>(validateCreate, body);
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const admin = await db.transaction((trx) => insertAdmin(trx, name, token, actor, false, user));
  return { ...admin, token };
}

export async function authenticateAdmin(db: Db, token: string): Promise<AdminIdentity | undefined> {
  if (token.length > 512) return undefined;
  const row = await db('admins').where({ token_hash: hashToken(token) }).whereNull('revoked_at').first('id', 'name', 'user_issuer', 'user_sub');
  return row ? { id: row.id, name: row.name, user_issuer: row.user_issuer ?? null, user_sub: row.user_sub ?? null } : undefined;
}

export async function listAdmins(db: Db, page: PageParams): Promise<Page<Admin>> {
  return paginate(db('admins').select('*'), 'id', page, toAdmin);
}

/** Revokes a credential. Refuses to revoke the last live one, which would lock every admin out. */
export async function revokeAdmin(db: Db, id: string, actor: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const live = await trx('admins').whereNull('revoked_at').forUpdate().select('id');
    if (!live.some((r) => r.id === id)) {
      const exists = await trx('admins').where({ id }).first('id');
      return Boolean(exists); // already revoked: idempotent
    }
    if (live.length === 1) throw new ValidationError('cannot revoke the last active admin credential', 'id', 409, 'conflict');
    await trx('admins').where({ id }).update({ revoked_at: new Date(), revoked_by: actor });
    await appendEntry(trx, { kind: 'admin.admin.revoked', actor, payload: { id } });
    return true;
  });
}

/**
 * Start-up: with ADMIN_TOKEN, make it the bootstrap credential (replacing an earlier bootstrap token);
 * without it, create one only when no admin exists and return it so the caller prints it once.
 */
export async function bootstrapAdmin(db: Db, adminToken: string | undefined): Promise<string | undefined> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [0x1a7e_0002]);
    if (adminToken) {
      const hash = hashToken(adminToken);
      const same = await trx('admins').where({ token_hash: hash }).first('id', 'revoked_at');
      if (same) return undefined;
      await trx('admins').where({ bootstrap: true }).whereNull('revoked_at').update({ revoked_at: new Date(), revoked_by: 'system' });
      await insertAdmin(trx, 'bootstrap', adminToken, 'system', true);
      return undefined;
    }
    const any = await trx('admins').first('id');
    if (any) return undefined;
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    await insertAdmin(trx, 'bootstrap', token, 'system', true);
    return token;
  });
}
