import { appendEntry } from '../ledger/append.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import { openReview, suspendTask, type ReviewBinding } from '../review/reviews.ts';
import type { Db } from '../store/db.ts';
import { revokeCascade } from './revoke.ts';

export type TaskStatus = { status: 'active' | 'suspended' | 'downgraded'; review_id: string | null };

export async function taskStatus(db: Db, task: string): Promise<TaskStatus> {
  const row = await db('tasks').where({ task }).first('status', 'review_id');
  return row ? { status: row.status, review_id: row.review_id ?? null } : { status: 'active', review_id: null };
}

/**
 * Suspends a task for a person: every live token of the task is revoked down the delegation tree, the
 * task refuses new exchanges, and a review is opened with the rule and the evidence. Returns the review.
 */
export async function suspendForReview(db: Db, task: string, binding: ReviewBinding, context: Record<string, unknown>, reasons: string[]): Promise<string> {
  // A task token is held, not revoked: the task can resume with it once a person lifts the suspension.
  const revoked = await revokeCascade(db, { task }, 'system', `behaviour: ${reasons.join(', ')}`, { holdTaskToken: true });
  const reviewId = await openReview(db, 'task_suspension', { ...binding, task }, { ...context, reasons, evidence: { ...(context.evidence as object | undefined), revoked: revoked.jtis } });
  await suspendTask(db, task, reviewId, reasons.join(', '));
  return reviewId;
}

/** Downgrades a task: it may go on, with `read` scopes only (per each scope's `operation`). */
export async function downgradeTask(db: Db, task: string, rule: string, evidence: Record<string, unknown>): Promise<void> {
  await db.transaction(async (trx) => {
    const current = await trx('tasks').where({ task }).forUpdate().first('status');
    // Already downgraded (or suspended, which is stricter): nothing new to record.
    if (current && current.status !== 'active') return;
    if (current) await trx('tasks').where({ task }).update({ status: 'downgraded', reason: rule, updated_at: new Date() });
    else await trx('tasks').insert({ task, status: 'downgraded', reason: rule, updated_at: new Date() });
    await appendEntry(trx, { kind: 'task.downgraded', actor: 'system', payload: { task, rule, evidence } });
  });
}

/**
 * The policy's counters over a task's recorded decisions (repeated denials, volume of grants), checked
 * after each decision of that kind is recorded. Returns the first that tripped, with the evidence.
 */
export async function trippedCounter(db: Db, policy: CompiledPolicy, task: string, counts: 'denied' | 'granted') {
  for (const rule of policy.behaviour) {
    if (rule.counts !== counts) continue;
    const since = new Date(Date.now() - rule.within * 1000);
    const row = await db('ledger_entries').where({ task, kind: counts === 'denied' ? 'exchange.denied' : 'exchange.granted' }).where('at', '>=', since).count({ n: '*' }).first();
    const n = Number(row?.n ?? 0);
    if (n >= rule.count) return { rule, evidence: { [counts === 'denied' ? 'denials' : 'grants']: n, within_seconds: rule.within } };
  }
  return undefined;
}
