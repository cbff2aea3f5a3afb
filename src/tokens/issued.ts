import type { Knex } from 'knex';
import type { Db } from '../store/db.ts';

/** The tables src/tokens owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['issued_tokens'] as const;

export interface IssuedToken {
  jti: string;
  client_id: string;
  subject: string | null;
  audience: string;
  scope: string;
  grant_type: string;
  issued_at: Date;
  expires_at: Date;
  parent_jti?: string | null;
  task?: string | null;
  subject_issuer?: string | null;
  /** JSON text: the delegation chain. */
  act?: string | null;
  /** JSON text: the granted authorization_details. */
  authorization_details?: string | null;
  /** JSON text: the claims of the chain's original subject token, for policy on later hops. */
  subject_claims?: string | null;
  /** `task` (a task token), `access` (for a resource) or `delegation` (for another agent). */
  kind?: 'task' | 'access' | 'delegation' | null;
}

/**
 * The issued-token index: every token intentgate mints, recorded in the same transaction as its ledger
 * entry and before the token is returned, so no token exists that the server does not know about.
 * Answered unexecuted: the ledger writer runs it within the statement that appends the entries (one
 * round trip for a whole group commit).
 */
export function issuedTokensInsert(trx: Db, tokens: IssuedToken[]): Knex.QueryBuilder | undefined {
  return tokens.length ? trx('issued_tokens').insert(tokens.map((t) => ({ ...t, status: 'active' }))) : undefined;
}

/**
 * Locks the given parent tokens for share while they are live (active, not expired) and answers the first
 * one that is not: a child is recorded only under a parent still live when its record commits.
 */
export async function lockLiveParents(trx: Db, jtis: string[]): Promise<string | undefined> {
  if (jtis.length === 0) return undefined;
  const live = new Set((await trx('issued_tokens').whereIn('jti', jtis).where({ status: 'active' }).where('expires_at', '>', new Date())
    .forShare().select('jti')).map((r: { jti: string }) => r.jti));
  return jtis.find((j) => !live.has(j));
}

/** An issued token's row as the exchange and the ledger's event check read it. */
export interface IssuedRow {
  status: string; expires_at: Date | string; kind: string | null; audience: string; client_id: string;
  subject: string | null; subject_issuer: string | null; task: string | null; subject_claims: unknown; authorization_details: unknown;
}

/** The index's row for one token, or undefined when intentgate never issued it. */
export async function issuedToken(db: Db, jti: string): Promise<IssuedRow | undefined> {
  return db('issued_tokens').where({ jti })
    .first('status', 'expires_at', 'kind', 'audience', 'client_id', 'subject', 'subject_issuer', 'task', 'subject_claims', 'authorization_details');
}

/** A task's tokens in issue order, as the admin's task view shows them. */
export async function tokensOfTask(db: Db, task: string) {
  return db('issued_tokens').where({ task }).orderBy([{ column: 'issued_at', order: 'asc' }, { column: 'jti', order: 'asc' }])
    .select('jti', 'parent_jti', 'kind', 'client_id', 'audience', 'scope', 'status', 'issued_at', 'expires_at', 'subject_issuer', 'subject', 'authorization_details');
}

/** Whether any token was issued in this task. */
export async function taskHasTokens(db: Db, task: string): Promise<boolean> {
  return (await db('issued_tokens').where({ task }).first('jti')) !== undefined;
}
