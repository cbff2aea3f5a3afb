import type { CompiledPolicy } from '../policy/compile.ts';
import type { DecisionInput } from '../policy/decide.ts';
import { decideRequest, type RequestDecision } from '../policy/request.ts';
import type { Standing } from '../tasks/holds.ts';
import { ExchangeError } from './errors.ts';

/** Why a standing refused the request, in the words the agent is given. */
export function standingRefusal(decision: RequestDecision, input: DecisionInput): ExchangeError | undefined {
  const [reason] = decision.reasons;
  const [which, state] = (reason ?? '').split('_');
  if ((which !== 'task' && which !== 'agent') || (state !== 'suspended' && state !== 'downgraded') || decision.reasons.length !== 1) return undefined;
  const who = which === 'task' ? 'the task' : 'this agent, for this user,';
  if (state === 'downgraded') return new ExchangeError('access_denied', `${who} is downgraded to read scopes: ${input.requestedScopes.filter((s) => !input.resource.scopes.some((x) => x.name === s && x.operation === 'read')).join(' ')} refused`, { reasons: [reason] });
  return new ExchangeError('access_denied', `${who} is suspended pending review`, { reasons: [reason], review_id: input[which]?.review_id ?? undefined });
}

/**
 * At commit (src/ledger/writer.ts): the refusal this decision would have been on the agent's standing as it is
 * now, or undefined when the grant stands. The standing decided on was read from this process's copy, or
 * under the user lock; a hold placed since (heard here or not) is caught here, before anything is recorded.
 */
export function heldRefusal(policy: CompiledPolicy, input: DecisionInput, granted: string[], ceiling: string[], fresh: Standing): ExchangeError | undefined {
  const decided = input.agent;
  // What was decided on, or a hold lifted meanwhile (the stricter decision stands).
  if (fresh.status === 'active' || (decided?.status === fresh.status && decided.review_id === fresh.review_id)) return undefined;
  const now = { ...input, agent: fresh };
  const again = decideRequest(policy, now);
  if (again.outcome === 'deny') {
    return standingRefusal(again, now) ?? new ExchangeError('access_denied', `denied by policy: ${again.reasons.join(', ')}`, { reasons: again.reasons });
  }
  const still = new Set(again.outcome === 'allow' ? again.grantedScopes.filter((s) => ceiling.includes(s)) : []);
  const lost = granted.filter((s) => !still.has(s));
  if (lost.length === 0) return undefined;
  return new ExchangeError('access_denied', `this agent, for this user, is ${fresh.status === 'downgraded' ? 'downgraded to read scopes' : 'held'}: ${lost.join(' ')} refused`, { reasons: [`agent_${fresh.status}`] });
}

