import type { Db } from '../store/db.ts';
import { appendEntry } from '../ledger/append.ts';
import { registryChanged } from './changes.ts';
import { checkAbsoluteUri, isUniqueViolation, iso, SCOPE_TOKEN } from '../validate/common.ts';
import { paginate, type Page, type PageParams } from './pagination.ts';
import { check, compileSchema, ValidationError } from '../validate/schema.ts';

/** The tables src/registry owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['resources'] as const;

export type Sensitivity = 'public' | 'internal' | 'confidential' | 'restricted';
export interface ResourceScope { name: string; sensitivity: Sensitivity; operation: 'read' | 'write' }
export interface Resource {
  identifier: string;
  name: string;
  scopes: ResourceScope[];
  access_token_ttl: number | null;
  created_at: string;
  updated_at: string;
}

const scopeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'sensitivity', 'operation'],
  properties: {
    name: { type: 'string', pattern: SCOPE_TOKEN },
    sensitivity: { enum: ['public', 'internal', 'confidential', 'restricted'] },
    operation: { enum: ['read', 'write'] },
  },
};
const fields = {
  name: { type: 'string', minLength: 1, maxLength: 200, format: 'visible-text' },
  scopes: { type: 'array', maxItems: 200, items: scopeSchema },
  access_token_ttl: { type: ['integer', 'null'], minimum: 10, maximum: 86_400 },
};
const validateCreate = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['identifier', 'name', 'scopes'],
  properties: { identifier: { type: 'string', minLength: 1, maxLength: 2000 }, ...fields },
});
const validatePatch = compileSchema({ type: 'object', additionalProperties: false, minProperties: 1, properties: fields });

type CreateBody = { identifier: string; name: string; scopes: ResourceScope[]; access_token_ttl?: number | null };
type PatchBody = Partial<Omit<CreateBody, 'identifier'>>;

function checkScopes(scopes: ResourceScope[]): void {
  const seen = new Set<string>();
  scopes.forEach((s, i) => {
    if (seen.has(s.name)) throw new ValidationError(`scopes.${i}.name duplicates ${s.name}`, `scopes.${i}.name`);
    seen.add(s.name);
  });
}

export function toResource(row: Record<string, unknown>): Resource {
  return {
    identifier: row.identifier as string,
    name: row.name as string,
    scopes: row.scopes as ResourceScope[],
    access_token_ttl: (row.access_token_ttl as number | null) ?? null,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export async function createResource(db: Db, body: unknown, actor: string): Promise<Resource> {
  const input = check<CreateBody>(validateCreate, body);
  checkAbsoluteUri(input.identifier, 'identifier');
  checkScopes(input.scopes);
  const now = new Date();
  try {
    return await db.transaction(async (trx) => {
      const [row] = await trx('resources').insert({
        identifier: input.identifier,
        name: input.name,
        scopes: JSON.stringify(input.scopes),
        access_token_ttl: input.access_token_ttl ?? null,
        created_at: now,
        updated_at: now,
      }).returning('*');
      await appendEntry(trx, { kind: 'admin.resource.created', actor, payload: { identifier: input.identifier, scopes: input.scopes } });
      await registryChanged(trx, 'resources');
      return toResource(row);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new ValidationError(`a resource with identifier ${input.identifier} exists`, 'identifier', 409, 'conflict');
    throw err;
  }
}

export async function getResource(db: Db, identifier: string): Promise<Resource | undefined> {
  const row = await db('resources').where({ identifier }).first();
  return row ? toResource(row) : undefined;
}

export async function listResources(db: Db, page: PageParams): Promise<Page<Resource>> {
  return paginate(db('resources').select('*'), 'identifier', page, toResource);
}

export async function updateResource(db: Db, identifier: string, body: unknown, actor: string): Promise<Resource | undefined> {
  const input = check<PatchBody>(validatePatch, body);
  if (input.scopes) checkScopes(input.scopes);
  return db.transaction(async (trx) => {
    const patch: Record<string, unknown> = { updated_at: new Date() };
    if (input.name !== undefined) patch.name = input.name;
    if (input.scopes !== undefined) patch.scopes = JSON.stringify(input.scopes);
    if (input.access_token_ttl !== undefined) patch.access_token_ttl = input.access_token_ttl;
    const [row] = await trx('resources').where({ identifier }).update(patch).returning('*');
    if (!row) return undefined;
    await appendEntry(trx, { kind: 'admin.resource.updated', actor, payload: { identifier, changes: input } });
    await registryChanged(trx, 'resources');
    return toResource(row);
  });
}

export async function deleteResource(db: Db, identifier: string, actor: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const users = await trx('clients').where({ resource_server: identifier }).first('client_id');
    if (users) throw new ValidationError(`client ${users.client_id} authenticates as this resource server; delete or change it first`, 'identifier', 409, 'conflict');
    const gone = await trx('resources').where({ identifier }).delete().returning('identifier');
    if (gone.length === 0) return false;
    await appendEntry(trx, { kind: 'admin.resource.deleted', actor, payload: { identifier } });
    await registryChanged(trx, 'resources');
    return true;
  });
}
