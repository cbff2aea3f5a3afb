import { appendEntry } from '../ledger/append.ts';
import { countDecisions } from '../ledger/query.ts';
import type { BehaviourOutcome, CompiledPolicy, CounterRule } from '../policy/compile.ts';
import { openReview, type ReviewBinding } from '../review/reviews.ts';
import type { Db } from '../store/db.ts';
import { resumeTaskIn } from './tasks.ts';
import { downgrade, lift, lockHold, standingOf, suspend, type HoldTarget, type Standing } from './holds.ts';
import { countAgentGrants } from '../tokens/grants.ts';
import { revokeCascadeIn, type RevocationTarget } from '../tokens/revoke.ts';

export type TaskStatus = Standing;

export async function taskStatus(db: Db, task: string): Promise<TaskStatus> {
  return standingOf(db, { per: 'task', task });
}

const revocationOf = (t: HoldTarget): RevocationTarget => (t.per === 'task' ? { task: t.task } : { client_id: t.client_id, user: t.user });

/**
 * Suspends a task for a person: every live token of the task is revoked down the delegation tree, the
 * task refuses new exchanges, and a review is opened with the rule and the evidence. Returns the review.
 */
export async function suspendForReview(db: Db, task: string, binding: ReviewBinding, context: Record<string, unknown>, reasons: string[]): Promise<string> {
  return suspendHold(db, { per: 'task', task }, binding, context, reasons);
}

/** Suspends a task, or an agent for one user (all its tokens for that user, in every task), pending review. */
export async function suspendHold(db: Db, t: HoldTarget, binding: ReviewBinding, context: Record<string, unknown>, reasons: string[]): Promise<string> {
  // One transaction, under the hold lock taken first: a grant committing meanwhile either commits before the
  // revocation (which then revokes it) or waits and reads the suspension (src/tasks/holds.ts, lockHold).
  return db.transaction(async (trx) => {
    await lockHold(trx, t);
    // A task token is held, not revoked: the task can resume with it once a person lifts the suspension.
    const revoked = await revokeCascadeIn(trx, revocationOf(t), 'system', `behaviour: ${reasons.join(', ')}`, t.per === 'task' ? { holdTaskToken: true } : {});
    const evidence = { ...(context.evidence as object | undefined), revoked: revoked.jtis };
    const reviewId = t.per === 'task'
      ? await openReview(trx, 'task_suspension', { ...binding, task: t.task }, { ...context, reasons, evidence })
      : await openReview(trx, 'agent_suspension', { ...binding, task: null }, { ...context, reasons, evidence, hold: t });
    await suspend(trx, t, reasons.join(', '), reviewId);
    return reviewId;
  });
}

/** Downgrades a task: it may go on, with `read` scopes only (per each scope's `operation`). */
export async function downgradeTask(db: Db, task: string, rule: string, evidence: Record<string, unknown>): Promise<void> {
  await downgrade(db, { per: 'task', task }, rule, evidence);
}

/**
 * A behaviour outcome on its target: `suspend` (tokens revoked, exchanges refused, a person reviews),
 * `downgrade` (read scopes only), or `review` (downgraded at once and a review opened: approving restores
 * the target, denying suspends it). A target already held is left as it is.
 */
export async function applyOutcome(db: Db, t: HoldTarget, standing: Standing, outcome: BehaviourOutcome, rule: string, binding: ReviewBinding,
  context: Record<string, unknown>, evidence: Record<string, unknown>): Promise<void> {
  if (outcome === 'suspend') {
    if (standing.status === 'suspended') return;
    await suspendHold(db, t, binding, { ...context, rule: [rule], evidence }, [rule]);
    return;
  }
  if (standing.status !== 'active') return;
  if (outcome === 'downgrade') {
    await downgrade(db, t, rule, evidence);
    return;
  }
  const reviewId = await openReview(db, `${t.per}_review`, { ...binding, task: t.per === 'task' ? t.task : null }, { ...context, rule: [rule], reasons: [rule], evidence, hold: t });
  await downgrade(db, t, rule, evidence, reviewId);
}

/** How many decisions of one kind the counter's target had within its window. */
async function countFor(db: Db, rule: CounterRule, at: { task: string; client_id: string; user: { issuer: string; sub: string } }): Promise<number> {
  const since = new Date(Date.now() - rule.within * 1000);
  if (rule.per === 'task') return countDecisions(db, { task: at.task }, rule.counts, since);
  // An agent's grants for a user are its issued tokens (a task token included); its refusals are ledger entries.
  if (rule.counts === 'denied') return countDecisions(db, { client_id: at.client_id, user: at.user }, 'denied', since);
  return countAgentGrants(db, at.client_id, at.user, since);
}

/**
 * The policy's counters over recorded decisions (repeated denials, volume of grants), per task or per
 * (agent, user) across its tasks, checked after each decision of that kind is recorded. Returns every
 * counter that tripped, with its target and the evidence.
 */
export async function trippedCounters(db: Db, policy: CompiledPolicy, at: { task: string; client_id: string; user: { issuer: string; sub: string } }, counts: 'denied' | 'granted') {
  const tripped: Array<{ rule: CounterRule; target: HoldTarget; evidence: Record<string, unknown> }> = [];
  for (const rule of policy.behaviour) {
    if (rule.counts !== counts) continue;
    const n = await countFor(db, rule, at);
    if (n < rule.count) continue;
    const target: HoldTarget = rule.per === 'task' ? { per: 'task', task: at.task } : { per: 'agent', client_id: at.client_id, user: at.user };
    tripped.push({ rule, target, evidence: { [counts === 'denied' ? 'denials' : 'grants']: n, within_seconds: rule.within, per: rule.per, ...(rule.per === 'agent' ? { client_id: at.client_id, user: at.user } : { task: at.task }) } });
  }
  return tripped;
}

/** What a review holds: named in its context (`hold`), or the task a task review is about. */
function holdOf(review: { kind: string; task: string | null; context: unknown }): HoldTarget | undefined {
  const hold = (review.context as { hold?: HoldTarget } | null)?.hold;
  if (hold && (hold.per === 'task' || hold.per === 'agent')) return hold;
  return review.kind === 'task_review' && review.task ? { per: 'task', task: review.task } : undefined;
}

/**
 * A person decided a review, inside the decision's transaction: a review that holds a task or an agent
 * (a `review` outcome, a baseline drift's request, an agent's suspension) restores it when approved; a
 * `review` outcome denied suspends it, its tokens revoked. An approved task suspension resumes the task
 * (its held task token live again).
 */
export async function reviewDecided(trx: Db, review: { id: string; kind: string; task: string | null; context: unknown }, approved: boolean): Promise<void> {
  // Before anything it locks or appends (the hold lock comes before the ledger head, as in the group commit).
  if (review.kind === 'task_suspension' && approved && review.task) {
    await lockHold(trx, { per: 'task', task: review.task });
    await resumeTaskIn(trx, review.task);
  }
  const hold = holdOf(review);
  if (!hold) return;
  await lockHold(trx, hold);
  if (approved) {
    await lift(trx, hold, review.id);
    return;
  }
  if (review.kind === 'agent_suspension') return;
  const revoked = await revokeCascadeIn(trx, revocationOf(hold), 'system', `review ${review.id} denied`);
  await suspend(trx, hold, 'review denied', review.id);
  await appendEntry(trx, { kind: `${hold.per}.suspended`, actor: 'system', payload: { ...(hold.per === 'task' ? { task: hold.task } : { client_id: hold.client_id, user: hold.user }), review_id: review.id, revoked: revoked.jtis } });
}
