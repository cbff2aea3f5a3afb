import type { CompiledPolicy } from '../policy/compile.ts';
import type { DecisionInput } from '../policy/decide.ts';
import { decideRequest, type RequestDecision } from '../policy/request.ts';
import type { Standing } from '../tasks/holds.ts';
import { ExchangeError, invalidRequest } from './errors.ts';

/** Why a standing refused the request, in the words the agent is given. */
export function standingRefusal(decision: RequestDecision, input: DecisionInput): ExchangeError | undefined {
  const [reason] = decision.reasons;
  const [which, state] = (reason ?? '').split('_');
  if ((which !== 'task' && which !== 'agent') || (state !== 'suspended' && state !== 'downgraded') || decision.reasons.length !== 1) return undefined;
  const who = which === 'task' ? 'the task' : 'this agent, for this user,';
  if (state === 'downgraded') return new ExchangeError('access_denied', `${who} is downgraded to read scopes: ${input.requestedScopes.filter((s) => !input.resource.scopes.some((x) => x.name === s && x.operation === 'read')).join(' ')} refused`, { reasons: [reason] });
  return new ExchangeError('access_denied', `${who} is suspended pending review`, { reasons: [reason], review_id: input[which]?.review_id ?? undefined });
}

/** The standings re-read at commit (src/ledger/writer.ts): the agent's for its user, and the task's inside one. */
export interface FreshStandings { agent?: Standing; task?: Standing }

/**
 * A task's standing at commit refuses what no decision may grant in it: the refusal the exchange gives a
 * subject token of a revoked or suspended task (src/exchange/task_subject.ts). A task row may say `revoked`,
 * which a decision's input never holds: its tokens are gone.
 */
export function taskRefusal(fresh: Standing | undefined): ExchangeError | undefined {
  if ((fresh?.status as string | undefined) === 'revoked') return invalidRequest('subject_token has been revoked or is no longer live');
  if (fresh?.status === 'suspended') return new ExchangeError('access_denied', 'the task is suspended pending review', { reasons: ['task_suspended'], ...(fresh.review_id ? { review_id: fresh.review_id } : {}) });
  return undefined;
}

const unchanged = (decided: Standing | undefined, fresh: Standing | undefined) =>
  !fresh || fresh.status === 'active' || (decided?.status === fresh.status && decided.review_id === fresh.review_id);

/**
 * At commit (src/ledger/writer.ts): the refusal this decision would have been on the agent's and the task's
 * standings as they are now, or undefined when the grant stands. The agent's standing decided on was read from
 * this process's copy, or under the user lock, and the task's before the decision; a hold placed since (heard
 * here or not) is caught here, before anything is recorded.
 */
export function heldRefusal(policy: CompiledPolicy, input: DecisionInput, granted: string[], ceiling: string[], fresh: FreshStandings): ExchangeError | undefined {
  const sameTask = unchanged(input.task, fresh.task);
  const sameAgent = unchanged(input.agent, fresh.agent);
  // What was decided on, or a hold lifted meanwhile (the stricter decision stands).
  if (sameTask && sameAgent) return undefined;
  const gone = sameTask ? undefined : taskRefusal(fresh.task);
  if (gone) return gone;
  const now = { ...input, ...(sameTask ? {} : { task: fresh.task }), ...(sameAgent ? {} : { agent: fresh.agent }) };
  const again = decideRequest(policy, now);
  if (again.outcome === 'deny') {
    return standingRefusal(again, now) ?? new ExchangeError('access_denied', `denied by policy: ${again.reasons.join(', ')}`, { reasons: again.reasons });
  }
  const still = new Set(again.outcome === 'allow' ? again.grantedScopes.filter((s) => ceiling.includes(s)) : []);
  const lost = granted.filter((s) => !still.has(s));
  if (lost.length === 0) return undefined;
  // The task's standing comes first, as in the decision (src/policy/request.ts).
  const [which, changed] = sameTask ? ['agent', fresh.agent!] as const : ['task', fresh.task!] as const;
  const who = which === 'task' ? 'the task is' : 'this agent, for this user, is';
  return new ExchangeError('access_denied', `${who} ${changed.status === 'downgraded' ? 'downgraded to read scopes' : 'held'}: ${lost.join(' ')} refused`, { reasons: [`${which}_${changed.status}`] });
}
