import type { CompiledPolicy } from '../policy/compile.ts';
import type { Decision } from '../policy/decide.ts';
import { consumeApproval, openReview, pollReview, REVIEW_INTERVAL, type PollState, type ReviewBinding } from '../review/reviews.ts';
import { applyOutcome, suspendForReview, taskStatus, trippedCounters } from '../tasks/behaviour.ts';
import { downgrade, standingOf, type HoldTarget } from '../tasks/holds.ts';
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
  /** Where the counters count: the task, and the agent for this user. */
  at: { task: string; client_id: string; user: { issuer: string; sub: string } };
  /** A behaviour signal sent to review: what its review holds (downgraded until a person decides). */
  hold: { target: HoldTarget; rule: string; evidence: Record<string, unknown> } | undefined;
}

/**
 * A `review` outcome: the first request opens a review and answers `authorization_pending` (the device
 * and CIBA convention); the agent repeats the same request with `review_id`. Returns where that review
 * stands; `redeemReview` answers it. A behaviour signal's review also holds its target downgraded at once.
 */
export async function reviewState(g: GateInput): Promise<PollState> {
  if (!g.reviewId) {
    const hold = g.hold ? { hold: g.hold.target, evidence: g.hold.evidence } : {};
    const id = await openReview(g.db, 'exchange', g.binding, { ...g.context, ...hold, rule: g.hold ? [g.hold.rule] : g.decision.matchedRules, reasons: g.decision.reasons });
    if (g.hold) await downgrade(g.db, g.hold.target, g.hold.rule, g.hold.evidence, id);
    return g.deny(new ExchangeError('authorization_pending', `a person must approve this request (${g.decision.reasons.join(', ')}); repeat it with review_id`, { review_id: id, interval: REVIEW_INTERVAL }), g.decision);
  }
  return pollReview(g.db, g.reviewId, g.binding);
}

/**
 * Answers a review's state: too early is `authorization_pending`, faster than `interval` is `slow_down`, a
 * denial `access_denied`, a lapsed approval `expired_token`; an approval is used once, and then the token is granted.
 */
export async function redeemReview(g: GateInput, state: PollState): Promise<void> {
  const pending = (id: string) => ({ review_id: id, interval: REVIEW_INTERVAL });
  const id = g.reviewId!;
  switch (state) {
    case 'pending':
      throw new ExchangeError('authorization_pending', 'the request is still waiting for a person', pending(id));
    case 'slow_down':
      throw new ExchangeError('slow_down', `poll at most every ${REVIEW_INTERVAL} s`, pending(id));
    case 'denied':
      return g.deny(new ExchangeError('access_denied', 'a reviewer denied this request', { reasons: ['review_denied'], review_id: id }), g.decision);
    case 'expired':
      return g.deny(new ExchangeError('expired_token', 'the review or its approval has expired; ask again without review_id'), g.decision);
    case 'used':
      return g.deny(invalidRequest('this approval has already been used'), g.decision);
    case 'unknown':
      return g.deny(invalidRequest('review_id does not match this request (client, user, task, scope, resource and details must be the same)'), g.decision);
    case 'approved':
      if (!(await consumeApproval(g.db, id))) return g.deny(invalidRequest('this approval has already been used'), g.decision);
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

/** After a decision is recorded: a tripped counter suspends, downgrades or sends to review its task or agent. */
export async function applyCounters(g: GateInput, counts: 'denied' | 'granted'): Promise<void> {
  for (const { rule, target, evidence } of await trippedCounters(g.db, g.policy, g.at, counts)) {
    // From the database, not the copy in memory: a stale copy would skip a suspension or repeat one (rare: a counter tripped).
    const standing = target.per === 'task' ? await taskStatus(g.db, target.task) : await standingOf(g.db, target);
    await applyOutcome(g.db, target, standing, rule.outcome, rule.id, g.binding, g.context, evidence);
  }
}
