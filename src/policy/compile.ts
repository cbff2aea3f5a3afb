import { Ability, type RawRuleFrom } from '@casl/ability';
import { parseAttributes } from './attributes.ts';
import { amountTotalName, asList, historyAttributes, type Effect, type PolicyDocument, type PolicyRule } from './document.ts';
import { policyConditionsMatcher, type PolicyConditions } from './matcher.ts';
import { compileCidrs } from './net.ts';
import { compileTimeWindow } from './time.ts';

/**
 * What a rule's conditions are matched against: one (scope, authorization detail) pair of one
 * request. Request data only ever lives here, in the object being checked, never inside a rule,
 * so nothing a client sends can change what a rule means (no templating, no per-request compiling).
 */
export type MatchContext = {
  scope: string | null;
  sensitivity: string | null;
  operation: string | null;
  has_detail: boolean;
  action: string | null;
  object_type: string | null;
  object: Record<string, unknown>;
  purpose: string | null;
  /** History facts for this detail's object and action (see DecisionInput.history). */
  history: Record<string, unknown>;
  client: Record<string, unknown>;
  user: Record<string, unknown>;
  issuer: string | null;
  environment: string | null;
  delegated: boolean;
  delegating: boolean;
  delegate_to: string | null;
  /** `task` (starting a task), `tool_call` (a token for a resource) or `delegation` (a token for another agent). */
  request: string;
  /** Made within a task: with its task token, or a token derived from one. */
  in_task: boolean;
  now: Date;
  source_ip: string | null;
};

export type BehaviourOutcome = 'suspend' | 'downgrade' | 'review';
/** What a behaviour outcome holds: the task, or the agent for this user across its tasks. */
export type HoldScope = 'task' | 'agent';
export interface CounterRule { id: string; counts: 'denied' | 'granted'; count: number; within: number; outcome: BehaviourOutcome; per: HoldScope }
export interface BaselineRule { id: string; within: number; minGrants: number; outcome: BehaviourOutcome; per: HoldScope }

export { amountTotalName };
/** Where the context keeps the earlier total for one window, action and object type. */
export const amountKey = (within: number, action: string, type: string): string => `${within}|${action}|${type}`;
/** A task token's lifetime when the policy names none: one hour. */
export const DEFAULT_TASK_TTL = 3600;

/** Rules with no `resource` apply to every resource; CASL's "any subject type" expresses that. */
export const ANY_RESOURCE = '*';
type Tuple = [Effect, string | MatchContext];
export type PolicyAbility = Ability<Tuple, PolicyConditions>;

/** What decide() needs about a rule besides its conditions. */
export interface RuleInfo {
  readonly id: string;
  readonly index: number;
  readonly effect: Effect;
  readonly reason: string | undefined;
  readonly ttl: number | undefined;
  /** A deny that also suspends the task (behaviour check). */
  readonly suspendTask: boolean;
}
export interface CompiledPolicy {
  readonly version: string;
  /** Some rule reads history: decisions must then be serialised per user (see tasks/user_lock.ts). */
  readonly usesHistory: boolean;
  /**
   * The history facts some rule reads (`user_object_actions`, `task_action_count`; `amount_total` is
   * amountWindows): a decision reads, and records, only these.
   */
  readonly historyNeeds: Readonly<{ objectActions: boolean; taskCounts: boolean }>;
  /** Counters over recorded decisions (repeated denials, volume), per task or per (agent, user), and their outcomes. */
  readonly behaviour: ReadonlyArray<CounterRule>;
  /** Baseline drift checks: per agent and purpose, what it was granted over a window. */
  readonly baselines: ReadonlyArray<BaselineRule>;
  /** The windows (seconds) of the `history.amount_total` conditions: the running totals a decision needs. */
  readonly amountWindows: readonly number[];
  readonly defaultTtl: number | undefined;
  /** A task token's lifetime, seconds (default one hour). */
  readonly taskTtl: number;
  readonly ability: PolicyAbility;
  /** By rule id; the CASL rule carries the id in its `reason` field. */
  readonly rules: ReadonlyMap<string, RuleInfo>;
}

function conditionsOf(rule: PolicyRule, at: string): PolicyConditions | undefined {
  const w = rule.when ?? {};
  const c: PolicyConditions = {};
  const scopes = asList(rule.scopes);
  if (scopes.length > 0 && !scopes.includes('*')) c.scope = { $in: scopes };
  // Conditions on a detail cannot hold when the request carries none.
  if (w.action !== undefined || w.object_type !== undefined || w.object !== undefined) c.has_detail = true;
  if (w.action !== undefined) c.action = { $in: asList(w.action) };
  if (w.object_type !== undefined) c.object_type = { $in: asList(w.object_type) };
  if (w.object !== undefined) c.object = { $attrs: parseAttributes(w.object, `${at}.when.object`) };
  if (w.purpose !== undefined) c.purpose = { $in: asList(w.purpose) };
  if (w.sensitivity !== undefined) c.sensitivity = { $in: asList(w.sensitivity) };
  if (w.operation !== undefined) c.operation = { $in: asList(w.operation) };
  if (w.client !== undefined) c.client = { $attrs: parseAttributes(w.client, `${at}.when.client`) };
  if (w.user !== undefined) c.user = { $attrs: parseAttributes(w.user, `${at}.when.user`) };
  if (w.history !== undefined) c.history = { $attrs: parseAttributes(historyAttributes(w.history), `${at}.when.history`) };
  if (w.issuer !== undefined) c.issuer = { $in: asList(w.issuer) };
  if (w.environment !== undefined) c.environment = { $in: asList(w.environment) };
  if (w.delegated !== undefined) c.delegated = w.delegated;
  if (w.request !== undefined) c.request = { $in: asList(w.request) };
  if (w.in_task !== undefined) c.in_task = w.in_task;
  if (w.time !== undefined) c.now = { $time: compileTimeWindow(w.time, `${at}.when.time`) };
  if (w.source_ip !== undefined) c.source_ip = { $cidr: compileCidrs(asList(w.source_ip), `${at}.when.source_ip`) };
  if (rule.effect === 'allow') {
    // Only a rule naming the target may grant a delegation token, and such a rule grants nothing else.
    if (rule.delegate_to !== undefined) c.delegate_to = { $in: asList(rule.delegate_to) };
    else c.delegating = false;
  }
  return Object.keys(c).length > 0 ? c : undefined;
}

/**
 * Compiles a validated document once into a CASL ability: one action per effect, one subject type
 * per resource. Effects stay separate actions (rather than CASL's inverted rules, where the last
 * matching rule wins) so that decide() can apply "deny, then review, then allow" whatever the order.
 */
export function compilePolicy(doc: PolicyDocument, version: string): CompiledPolicy {
  const rules = new Map<string, RuleInfo>();
  const raw: RawRuleFrom<Tuple, PolicyConditions>[] = doc.rules.map((rule, index) => {
    rules.set(rule.id, { id: rule.id, index, effect: rule.effect, reason: rule.reason, ttl: rule.ttl, suspendTask: rule.suspend_task === true });
    const resources = asList(rule.resource);
    return {
      action: rule.effect,
      subject: resources.length > 0 ? resources : ANY_RESOURCE,
      conditions: conditionsOf(rule, `rules.${index}`),
      reason: rule.id,
    };
  });
  const ability: PolicyAbility = new Ability<Tuple, PolicyConditions>(raw, {
    conditionsMatcher: policyConditionsMatcher,
    anySubjectType: ANY_RESOURCE,
    anyAction: '\0none', // no effect is a wildcard action
  });
  // CASL builds each rule's matcher lazily; build them all now so no request pays for it.
  const subjects = new Set([ANY_RESOURCE, ...doc.rules.flatMap((r) => asList(r.resource))]);
  for (const effect of ['allow', 'deny', 'review'] as const) {
    for (const s of subjects) for (const r of ability.rulesFor(effect, s)) void r.ast;
  }
  const usesHistory = doc.rules.some((r) => r.when?.history !== undefined);
  const historyNeeds = Object.freeze({
    objectActions: doc.rules.some((r) => r.when?.history?.user_object_actions !== undefined),
    taskCounts: doc.rules.some((r) => r.when?.history?.task_action_count !== undefined),
  });
  const behaviour: CounterRule[] = [];
  const baselines: BaselineRule[] = [];
  for (const b of doc.behaviour ?? []) {
    const per = b.per ?? 'task';
    if (b.baseline) {
      baselines.push({ id: b.id, within: b.baseline.within, minGrants: b.baseline.min_grants, outcome: b.outcome, per });
      continue;
    }
    const c = (b.repeated_denials ?? b.volume)!;
    behaviour.push({ id: b.id, counts: b.repeated_denials ? 'denied' : 'granted', count: c.count, within: c.within, outcome: b.outcome, per });
  }
  const amountWindows = [...new Set(doc.rules.flatMap((r) => (r.when?.history?.amount_total !== undefined ? [r.when.history.within as number] : [])))];
  return Object.freeze({ version, usesHistory, historyNeeds, behaviour, baselines, amountWindows, defaultTtl: doc.default_ttl, taskTtl: doc.task_ttl ?? DEFAULT_TASK_TTL, ability, rules });
}
