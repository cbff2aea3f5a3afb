import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { appendEntry } from '../ledger/append.ts';
import type { Db } from '../store/db.ts';
import { iso } from '../validate/common.ts';
import { paginate, type Page, type PageParams } from './pagination.ts';
import { check, compileSchema, ValidationError } from '../validate/schema.ts';

/** The tables src/registry owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['admins'] as const;

/**
 * `admin`: everything. `reviewer`: the review queue (read, approve, deny) and every read. `auditor`: reads only.
 * Only an `admin` manages credentials.
 */
export const ADMIN_ROLES = ['admin', 'reviewer', 'auditor'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];
/** A person, as users are identified: issuer + `sub`. */
export interface Person { issuer: string; sub: string }
export interface Admin { id: string; name: string; role: AdminRole; created_at: string; created_by: string | null; revoked_at: string | null; user: Person | null }
export interface AdminIdentity { id: string; name: string; role: AdminRole; user: Person | null }

const TOKEN_PREFIX = 'iga_';
const PERSON = {
  type: 'object', additionalProperties: false, required: ['issuer', 'sub'],
  properties: { issuer: { type: 'string', minLength: 1, maxLength: 2000 }, sub: { type: 'string', minLength: 1, maxLength: 1000 } },
};
const validateCreate = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200, format: 'visible-text' },
    role: { enum: ADMIN_ROLES },
    // The person behind the credential: nobody decides a review of their own request.
    user: PERSON,
  },
});
// The binding is fixed at creation: changing it could untie a person from credentials they already made.
const validateUpdate = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['role'],
  properties: { role: { enum: ADMIN_ROLES } },
});

// Admin tokens are 256-bit random values, so a plain SHA-256 is a sound verifier; no slow hash needed.
function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function personOf(row: Record<string, unknown>): Person | null {
  return row.user_sub ? { issuer: row.user_issuer as string, sub: row.user_sub as string } : null;
}

function toAdmin(row: Record<string, unknown>): Admin {
  return {
    id: row.id as string,
    name: row.name as string,
    role: row.role as AdminRole,
    created_at: iso(row.created_at),
    created_by: (row.created_by as string | null) ?? null,
    revoked_at: row.revoked_at ? iso(row.revoked_at) : null,
    user: personOf(row),
  };
}

interface NewAdmin { name: string; role: AdminRole; user?: Person }

async function insertAdmin(trx: Db, input: NewAdmin, token: string, actor: string, bootstrap: boolean): Promise<Admin> {
  const [row] = await trx('admins').insert({
    id: `adm_${randomUUID()}`,
    name: input.name,
    role: input.role,
    user_issuer: input.user?.issuer ?? null,
    user_sub: input.user?.sub ?? null,
    token_hash: hashToken(token),
    bootstrap,
    created_at: new Date(),
    created_by: actor,
  }).returning('*');
  await appendEntry(trx, { kind: 'admin.admin.created', actor, payload: { id: row.id, name: input.name, role: input.role, user: input.user ?? null } });
  return toAdmin(row);
}

/** `actor` is the creating credential's id, or `cli` / `system`; it is the credential's `created_by`. */
export async function createAdmin(db: Db, body: unknown, actor: string): Promise<Admin & { token: string }> {
  const { name, role = 'admin', user } = check<{ name: string; role?: AdminRole; user?: Person }>(validateCreate, body);
  if (role === 'reviewer' && !user) throw new ValidationError('a reviewer must be bound to the person they are (user: {issuer, sub})', 'user');
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const admin = await db.transaction((trx) => insertAdmin(trx, { name, role, ...(user ? { user } : {}) }, token, actor, false));
  return { ...admin, token };
}

export async function authenticateAdmin(db: Db, token: string): Promise<AdminIdentity | undefined> {
  if (token.length > 512) return undefined;
  const row = await db('admins').where({ token_hash: hashToken(token) }).whereNull('revoked_at').first('id', 'name', 'role', 'user_issuer', 'user_sub');
  return row ? { id: row.id, name: row.name, role: row.role, user: personOf(row) } : undefined;
}

/**
 * Every person bound to this credential or to any credential up its creator chain (revoked ones
 * included): a credential never decides for any of them, so no chain of credentials lets a person
 * approve their own request.
 */
export async function personsInChain(db: Db, id: string): Promise<Person[]> {
  // UNION (not UNION ALL) ends the walk even if the data held a cycle.
  const { rows } = await db.raw(`
    with recursive chain(id, created_by, user_issuer, user_sub) as (
      select id, created_by, user_issuer, user_sub from admins where id = ?
      union
      select a.id, a.created_by, a.user_issuer, a.user_sub from admins a join chain c on a.id = c.created_by
    )
    select distinct user_issuer, user_sub from chain where user_sub is not null`, [id]) as { rows: Array<Record<string, unknown>> };
  return rows.map((r) => personOf(r)!);
}

export async function listAdmins(db: Db, page: PageParams): Promise<Page<Admin>> {
  return paginate(db('admins').select('*'), 'id', page, toAdmin);
}

/** Live credentials with the admin role, locked: the last one is never revoked nor demoted, which would lock every admin out. */
async function liveAdmins(trx: Db): Promise<Array<{ id: string; role: AdminRole }>> {
  return trx('admins').whereNull('revoked_at').orderBy('id').forUpdate().select('id', 'role');
}

function lastAdmin(live: Array<{ id: string; role: AdminRole }>, id: string): boolean {
  const admins = live.filter((r) => r.role === 'admin');
  return admins.length === 1 && admins[0]!.id === id;
}

/** Changes a credential's role; undefined when there is no such credential. */
export async function updateAdmin(db: Db, id: string, body: unknown, actor: string): Promise<Admin | undefined> {
  const { role } = check<{ role: AdminRole }>(validateUpdate, body);
  return db.transaction(async (trx) => {
    const live = await liveAdmins(trx);
    const row = await trx('admins').where({ id }).first();
    if (!row) return undefined;
    if (row.revoked_at) throw new ValidationError(`admin ${id} is revoked`, 'id', 409, 'conflict');
    if (row.role === role) return toAdmin(row);
    if (role === 'reviewer' && !row.user_sub) throw new ValidationError('a reviewer must be bound to the person they are; create a new credential with user', 'role');
    if (lastAdmin(live, id)) throw new ValidationError('cannot change the role of the last active admin-role credential', 'role', 409, 'conflict');
    const [updated] = await trx('admins').where({ id }).update({ role }).returning('*');
    await appendEntry(trx, { kind: 'admin.admin.updated', actor, payload: { id, role, previous_role: row.role, user: personOf(row) } });
    return toAdmin(updated);
  });
}

/** Revokes a credential. Refuses to revoke the last live admin-role one, which would lock every admin out. */
export async function revokeAdmin(db: Db, id: string, actor: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const live = await liveAdmins(trx);
    const target = live.find((r) => r.id === id);
    if (!target) {
      const exists = await trx('admins').where({ id }).first('id');
      return Boolean(exists); // already revoked: idempotent
    }
    if (lastAdmin(live, id)) throw new ValidationError('cannot revoke the last active admin-role credential', 'id', 409, 'conflict');
    await trx('admins').where({ id }).update({ revoked_at: new Date(), revoked_by: actor });
    await appendEntry(trx, { kind: 'admin.admin.revoked', actor, payload: { id, role: target.role } });
    return true;
  });
}

/**
 * Start-up: with ADMIN_TOKEN, make it the bootstrap credential (role admin, bound to nobody; replacing an
 * earlier bootstrap token); without it, create one only when no admin exists and return it so the caller
 * prints it once.
 */
export async function bootstrapAdmin(db: Db, adminToken: string | undefined): Promise<string | undefined> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [0x1a7e_0002]);
    const bootstrap: NewAdmin = { name: 'bootstrap', role: 'admin' };
    if (adminToken) {
      const hash = hashToken(adminToken);
      const same = await trx('admins').where({ token_hash: hash }).first('id', 'revoked_at');
      if (same) return undefined;
      const replaced = await trx('admins').where({ bootstrap: true }).whereNull('revoked_at')
        .update({ revoked_at: new Date(), revoked_by: 'system' }).returning(['id', 'role']);
      for (const r of replaced) await appendEntry(trx, { kind: 'admin.admin.revoked', actor: 'system', payload: { id: r.id, role: r.role } });
      await insertAdmin(trx, bootstrap, adminToken, 'system', true);
      return undefined;
    }
    const any = await trx('admins').first('id');
    if (any) return undefined;
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    await insertAdmin(trx, bootstrap, token, 'system', true);
    return token;
  });
}
