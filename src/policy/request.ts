import type { BehaviourOutcome, CompiledPolicy, HoldScope } from './compile.ts';
import { decide, type Decision, type DecisionInput, type Standing } from './decide.ts';

/** A behaviour signal the request raised, with the evidence a reviewer and the ledger are shown. */
export interface Signal {
  rule: string;
  kind: 'baseline_drift';
  outcome: BehaviourOutcome;
  per: HoldScope;
  evidence: {
    purpose: string;
    resource: string;
    new_resource: boolean;
    new_sensitivities: string[];
    baseline: { within_seconds: number; grants: number; resources: string[]; sensitivities: string[] };
  };
}

export interface RequestDecision extends Decision {
  /** Behaviour signals that shaped the decision (the exchange applies their outcomes). */
  signals: Signal[];
}

const OUTCOME_RANK: Record<BehaviourOutcome, number> = { downgrade: 1, review: 2, suspend: 3 };

/** The signal whose outcome is the strongest (suspend, then review, then downgrade): the one that shapes the decision. */
export function strongestSignal(signals: Signal[]): Signal | undefined {
  return signals.reduce<Signal | undefined>((a, b) => (!a || OUTCOME_RANK[b.outcome] > OUTCOME_RANK[a.outcome] ? b : a), undefined);
}

const refuse = (policy: CompiledPolicy, reasons: string[], signals: Signal[] = []): RequestDecision =>
  ({ outcome: 'deny', grantedScopes: [], matchedRules: [], reasons, policyVersion: policy.version, signals });

/**
 * A downgraded task or agent goes on with read scopes only: asking for a write is refused, and the
 * policy sees only the read scopes as candidates. A request that redeems the review holding the
 * downgrade is decided by that review instead.
 */
function applyStandings(policy: CompiledPolicy, input: DecisionInput, extra: HoldScope[] = []): DecisionInput | RequestDecision {
  let scopes = input.resource.scopes;
  const standings: Array<[HoldScope, Standing | undefined]> = [['task', input.task], ['agent', input.agent]];
  for (const [which, s] of standings) {
    if (s?.status === 'suspended') return refuse(policy, [`${which}_suspended`]);
    const downgraded = (s?.status === 'downgraded' && (!s.review_id || s.review_id !== input.review?.id)) || extra.includes(which);
    if (!downgraded) continue;
    const reads = new Set(scopes.filter((x) => x.operation === 'read').map((x) => x.name));
    const writes = input.requestedScopes.filter((x) => !reads.has(x));
    if (writes.length) return refuse(policy, [`${which}_downgraded`]);
    scopes = scopes.filter((x) => reads.has(x.name));
  }
  return scopes === input.resource.scopes ? input : { ...input, resource: { ...input.resource, scopes } };
}

/** The request's purposes: each detail's own, or the request's when a detail names none. */
function purposesOf(input: DecisionInput): string[] {
  const all = input.details.length ? input.details.map((d) => (typeof d.purpose === 'string' ? d.purpose : input.purpose)) : [input.purpose];
  return [...new Set(all.filter((p): p is string => typeof p === 'string'))];
}

/**
 * Baseline drift: per agent and purpose, the resources and sensitivity levels it was granted over the
 * rule's window. Once it has at least `min_grants` there, a resource or a sensitivity level never seen
 * for the purpose is a signal. Delegations (an agent as target) are not about a resource: never drift.
 */
function driftSignals(policy: CompiledPolicy, input: DecisionInput, scopes: string[]): Signal[] {
  const resource = input.resource.identifier;
  if (policy.baselines.length === 0 || input.delegateTo !== undefined) return [];
  const labels = new Map(input.resource.scopes.map((s) => [s.name, s.sensitivity as string]));
  const sensitivities = [...new Set(scopes.map((s) => labels.get(s)).filter((s): s is string => s !== undefined))];
  const signals: Signal[] = [];
  for (const rule of policy.baselines) {
    for (const purpose of purposesOf(input)) {
      const facts = input.baseline?.[`${rule.within}|${purpose}`];
      if (!facts || facts.grants < rule.minGrants) continue;
      const newResource = !facts.resources.includes(resource);
      const newSensitivities = sensitivities.filter((s) => !facts.sensitivities.includes(s));
      if (!newResource && newSensitivities.length === 0) continue;
      signals.push({
        rule: rule.id, kind: 'baseline_drift', outcome: rule.outcome, per: rule.per,
        evidence: {
          purpose, resource, new_resource: newResource, new_sensitivities: newSensitivities,
          baseline: { within_seconds: rule.within, grants: facts.grants, resources: facts.resources, sensitivities: facts.sensitivities },
        },
      });
    }
  }
  return signals;
}

/**
 * Decides one request from its whole context, as the exchange, `policies/simulate`, `policies/replay` and
 * the policy fixtures all do: the task's and the agent's standing (suspended, downgraded), the policy's
 * rules, behaviour signals (baseline drift), and the review the request redeems. Pure: the same context
 * always gives the same decision, so a recorded context re-decides exactly.
 */
export function decideRequest(policy: CompiledPolicy, input: DecisionInput): RequestDecision {
  const standing = applyStandings(policy, input);
  if ('outcome' in standing) return standing;
  let decision: RequestDecision = { ...decide(policy, standing), signals: [] };
  if (decision.outcome !== 'deny') {
    const signals = driftSignals(policy, standing, standing.requestedScopes.length ? standing.requestedScopes : decision.grantedScopes);
    if (signals.length) {
      const worst = strongestSignal(signals)!;
      if (worst.outcome === 'suspend') return { ...refuse(policy, ['baseline_drift'], signals), matchedRules: decision.matchedRules };
      if (worst.outcome === 'review') {
        decision = { ...decision, outcome: 'review', grantedScopes: [], reasons: ['baseline_drift'], signals };
      } else {
        // Downgrade: this request is already decided as the downgraded task (or agent) would be.
        const down = applyStandings(policy, standing, [worst.per]);
        decision = 'outcome' in down ? { ...down, signals } : { ...decide(policy, down), signals };
      }
    }
  }
  // A person approved exactly this request: the token is granted with what was asked, within the ceiling.
  if (decision.outcome === 'review' && input.review?.state === 'approved') {
    const known = new Set(standing.resource.scopes.map((s) => s.name));
    return { ...decision, outcome: 'allow', grantedScopes: standing.requestedScopes.filter((s) => known.has(s)) };
  }
  return decision;
}

/** What a decision is asked about, before the context is read: the same for an exchange and a simulation. */
export interface DecisionRequest {
  client: { client_id: string; client_name?: string | null; grant_types: string[]; scope: string };
  user: { issuer: string; sub: string; claims: Record<string, unknown> };
  /** The subject token's scopes; a simulation that does not say puts no limit here. */
  subjectScopes?: string[];
  /** `resource`, or `audience` naming an agent (a delegation). */
  target: string;
  /** Absent: none requested (the policy's default, within the ceiling). */
  requestedScopes?: string[];
  details: DecisionInput['details'];
  delegated: boolean;
  sourceIp?: string;
  /** The deployment's environment (configuration), as policy `environment` conditions see it. */
  environment?: string;
  /** A task start (`task`); absent for a tool call or a delegation, which the target tells apart. */
  request?: 'task';
  /** Made within a task (its task token, or a token derived from one). */
  inTask?: boolean;
  /** The task's purpose, standing in for a detail that names none. */
  purpose?: string;
  now: Date;
  /** The task the request continues; absent on a first exchange (which starts one). */
  task?: string;
  /** The review this request redeems. */
  reviewId?: string;
}

/** The decision's context, or the refusal that comes before any decision (the exchange answers it as is). */
export type BuiltContext =
  | { ok: true; input: DecisionInput }
  | { ok: false; error: 'invalid_target' | 'invalid_scope'; description: string };

/** Builds a decision's context from the stores (src/exchange/context.ts); the composition files hand it out. */
export type ContextBuilder = (policy: CompiledPolicy, request: DecisionRequest) => Promise<BuiltContext>;
