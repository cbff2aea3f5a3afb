import type { CompiledPolicy } from '../policy/compile.ts';
import type { Decision } from '../policy/decide.ts';
import { consumeApproval, openReview, pollReview, REVIEW_INTERVAL, type ReviewBinding } from '../review/reviews.ts';
import { downgradeTask, suspendForReview, taskStatus, trippedCounter } from '../tasks/behaviour.ts';
import type { Db } from '../store/db.ts';
import { ExchangeError, invalidRequest } from './errors.ts';


export interface GateInput {
  db: Db;
  binding: ReviewBinding;
  reviewId: string | undefined;
  decision: Decision;
  policy: CompiledPolicy;
  context: Record<string, unknown>;
  /** Records the refusal, then throws it. */
  deny: (err: ExchangeError, decision?: Decision) => Promise<never>;
}

/**
 * A `review` outcome: the first request opens a review and answers `authorization_pending` (the device
 * and CIBA convention); the agent repeats the same request with `review_id`, and gets the token once a
 * person approved it (single use), `access_denied` if they denied it, `slow_down` when polling faster
 * than `interval`, `expired_token` when the approval lapsed. Returns the scopes to grant when approved.
 */
export async function reviewGate(g: GateInput): Promise<string[]> {
  const pending = (id: string) => ({ review_id: id, interval: REVIEW_INTERVAL });
  if (!g.reviewId) {
    const id = await openReview(g.db, 'exchange', g.binding, { ...g.context, rule: g.decision.matchedRules, reasons: g.decision.reasons });
    return g.deny(new ExchangeError('authorization_pending', `a person must approve this request (${g.decision.reasons.join(', ')}); repeat it with review_id`, pending(id)), g.decision);
  }
  switch (await pollReview(g.db, g.reviewId, g.binding)) {
    case 'pending':
      throw new ExchangeError('authorization_pending', 'the request is still waiting for a person', pending(g.reviewId));
    case 'slow_down':
      throw new ExchangeError('slow_down', `poll at most every ${REVIEW_INTERVAL} s`, pending(g.reviewId));
    case 'denied':
      return g.deny(new ExchangeError('access_denied', 'a reviewer denied this request', { reasons: ['review_denied'], review_id: g.reviewId }), g.decision);
    case 'expired':
      return g.deny(new ExchangeError('expired_token', 'the review or its approval has expired; ask again without review_id'), g.decision);
    case 'used':
      return g.deny(invalidRequest('this approval has already been used'), g.decision);
    case 'unknown':
      return g.deny(invalidRequest('review_id does not match this request (client, user, task, scope, resource and details must be the same)'), g.decision);
    case 'approved':
      if (!(await consumeApproval(g.db, g.reviewId))) return g.deny(invalidRequest('this approval has already been used'), g.decision);
      return g.binding.scope;
  }
}

/**
 * A deny rule marked `suspend_task` is a behaviour check: the task's live tokens are revoked down the
 * whole delegation tree, new exchanges for the task are refused, and a person reviews it.
 */
export async function suspendIfBehaviourRule(g: GateInput, task: string): Promise<void> {
  const rules = g.decision.matchedRules.map((id) => g.policy.rules.get(id)).filter((r) => r?.effect === 'deny' && r.suspendTask && g.decision.reasons.includes(r.reason ?? ''));
  if (rules.length === 0) return;
  const reviewId = await suspendForReview(g.db, task, g.binding, { ...g.context, rule: rules.map((r) => r!.id) }, g.decision.reasons);
  await g.deny(new ExchangeError('access_denied', `the task is suspended for review: ${g.decision.reasons.join(', ')}`, {
    reasons: [...g.decision.reasons, 'task_suspended'], review_id: reviewId,
  }), g.decision);
}

/** After a decision is recorded: a tripped counter suspends or downgrades the task. */
export async function applyCounters(g: GateInput, task: string, counts: 'denied' | 'granted'): Promise<void> {
  const tripped = await trippedCounter(g.db, g.policy, task, counts);
  if (!tripped) return;
  if (tripped.rule.outcome === 'downgrade') return downgradeTask(g.db, task, tripped.rule.id, tripped.evidence);
  if ((await taskStatus(g.db, task)).status === 'suspended') return;
  await suspendForReview(g.db, task, g.binding, { ...g.context, rule: [tripped.rule.id], evidence: tripped.evidence }, [tripped.rule.id]);
}
