import { appendEntry } from '../ledger/append.ts';
import { runStatements, type Db, type Statement } from '../store/db.ts';

/** The tables src/tasks owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['agent_holds'] as const;

export type Standing = { status: 'active' | 'suspended' | 'downgraded'; review_id: string | null };

/**
 * What a behaviour outcome holds: one task, or one agent for one user (issuer + sub) across all its
 * tasks, so an agent that keeps starting tasks cannot shed a hold by starting another.
 */
export type HoldTarget =
  | { per: 'task'; task: string }
  | { per: 'agent'; client_id: string; user: { issuer: string; sub: string } };

const agentKey = (t: Extract<HoldTarget, { per: 'agent' }>) => ({ client_id: t.client_id, subject_issuer: t.user.issuer, subject: t.user.sub });

/**
 * The statement that reads a standing: a task's (`tasks`) or an agent's for one user (`agent_holds`); its rows
 * go to standingFrom. A statement, so a decision under the user lock reads it in the lock's round trip.
 */
export function standingRead(t: HoldTarget): Statement {
  return t.per === 'task'
    ? { sql: 'select status, review_id from tasks where task = ?', bindings: [t.task] }
    : { sql: 'select status, review_id from agent_holds where client_id = ? and subject_issuer = ? and subject = ?', bindings: [t.client_id, t.user.issuer, t.user.sub] };
}

/** The standing from standingRead's rows (no row: active). */
export function standingFrom(rows: unknown[]): Standing {
  const row = rows[0] as { status: Standing['status']; review_id: string | null } | undefined;
  return row ? { status: row.status, review_id: row.review_id ?? null } : { status: 'active', review_id: null };
}

export async function standingOf(db: Db, t: HoldTarget): Promise<Standing> {
  return standingFrom((await runStatements(db, [standingRead(t)]))[0]!);
}

/** The agent's standing for this user (`agent_holds`; no row: active). */
export async function agentStanding(db: Db, client_id: string, user: { issuer: string; sub: string }): Promise<Standing> {
  return standingOf(db, { per: 'agent', client_id, user });
}

async function current(trx: Db, t: HoldTarget): Promise<{ status: string; review_id: string | null } | undefined> {
  return t.per === 'task'
    ? trx('tasks').where({ task: t.task }).forUpdate().first('status', 'review_id')
    : trx('agent_holds').where(agentKey(t)).forUpdate().first('status', 'review_id');
}

async function put(trx: Db, t: HoldTarget, status: 'active' | 'suspended' | 'downgraded', reason: string, reviewId: string | null): Promise<void> {
  const now = new Date();
  if (t.per === 'task') {
    await trx('tasks').insert({ task: t.task, status, reason, review_id: reviewId, updated_at: now }).onConflict('task').merge();
  } else if (status === 'active') {
    await trx('agent_holds').where(agentKey(t)).del();
  } else {
    await trx('agent_holds').insert({ ...agentKey(t), status, reason, review_id: reviewId, updated_at: now })
      .onConflict(['client_id', 'subject_issuer', 'subject']).merge();
  }
}

const entryFields = (t: HoldTarget) => (t.per === 'task' ? { task: t.task } : { client_id: t.client_id, user: t.user });

/**
 * Downgrades the target to read scopes (optionally held by a review a person decides). Only an active
 * target is downgraded: a suspension is stricter, and a second downgrade records nothing new.
 * Returns whether it changed anything.
 */
export async function downgrade(db: Db, t: HoldTarget, rule: string, evidence: Record<string, unknown>, reviewId: string | null = null): Promise<boolean> {
  return db.transaction(async (trx) => {
    const row = await current(trx, t);
    if (row && row.status !== 'active') return false;
    await put(trx, t, 'downgraded', rule, reviewId);
    await appendEntry(trx, { kind: `${t.per}.downgraded`, actor: 'system', payload: { ...entryFields(t), rule, evidence, ...(reviewId ? { review_id: reviewId } : {}) } });
    return true;
  });
}

/** Suspends the target (its tokens are revoked by the caller, in the same transaction). */
export async function suspend(trx: Db, t: HoldTarget, reason: string, reviewId: string | null): Promise<void> {
  await put(trx, t, 'suspended', reason, reviewId);
}

/** Lifts the hold a review placed, when that review still holds it. Returns whether it did. */
export async function lift(trx: Db, t: HoldTarget, reviewId: string): Promise<boolean> {
  const row = await current(trx, t);
  if (!row || row.status === 'active' || row.review_id !== reviewId) return false;
  await put(trx, t, 'active', 'review approved', null);
  await appendEntry(trx, { kind: `${t.per}.restored`, actor: 'system', payload: { ...entryFields(t), review_id: reviewId } });
  return true;
}
