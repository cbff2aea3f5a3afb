import { amountKey, amountTotalName, type CompiledPolicy, type MatchContext, type RuleInfo } from './compile.ts';
import type { Effect, Sensitivity } from './document.ts';
import { normaliseIp } from './net.ts';

export interface DecisionScope { name: string; sensitivity: Sensitivity; operation: 'read' | 'write' }
export interface DecisionDetail {
  type: string;
  action?: string;
  object?: { type?: string; id?: string; [k: string]: unknown };
  purpose?: string;
  [k: string]: unknown;
}
export interface DecisionInput {
  /** Already ⊆ subject ∩ client ∩ resource (the caller checked that). */
  requestedScopes: string[];
  resource: { identifier: string; scopes: DecisionScope[] };
  client: { id: string; name?: string | null; grant_types: string[] };
  user: { issuer: string; sub: string; claims: Record<string, unknown> };
  /** authorization_details; may be empty. */
  details: DecisionDetail[];
  purpose?: string;
  environment?: string;
  /** The request is a delegation hop (an act chain is present). */
  delegated: boolean;
  /** The request mints a delegation token for this client. */
  delegateTo?: string;
  /** The request starts a task (`task`); otherwise a tool call or, with delegateTo, a delegation. */
  request?: 'task' | 'tool_call' | 'delegation';
  /** The request is made within a task (its task token, or a token derived from one). */
  inTask?: boolean;
  sourceIp?: string;
  now: Date;
  /**
   * Ledger facts at this resource, when the policy reads history: the actions this user (any agent, any
   * task) was granted there or its server reported done, per object (`Type:id`), and how often this task
   * was granted each action there.
   */
  history?: HistoryInput;
  /** The task's standing when the request continues one (a first exchange starts a new, active task). */
  task?: Standing;
  /** This agent's standing for this user, across all its tasks (behaviour counters `per: agent`). */
  agent?: Standing;
  /** The review this request redeems (`review_id`), and where it stood when the request was decided. */
  review?: { id: string; state: string };
  /**
   * What this agent was granted per purpose over each baseline window (`behaviour[].baseline`), keyed
   * `<within>|<purpose>`: how many grants, at which resources, with which sensitivity levels.
   */
  baseline?: Record<string, BaselineFacts>;
}
export interface HistoryInput {
  userObjectActions: Record<string, string[]>;
  taskActionCounts: Record<string, number>;
  /**
   * The running total of `object.amount` this user was granted at this resource, keyed
   * `<within>|<action>|<object type>`, over the `within` seconds before the decision (this request excluded).
   */
  amountTotals?: Record<string, number>;
}
export interface Standing { status: 'active' | 'suspended' | 'downgraded'; review_id: string | null }
export interface BaselineFacts { grants: number; resources: string[]; sensitivities: string[] }
export interface Decision {
  outcome: Effect;
  grantedScopes: string[];
  ttl?: number;
  matchedRules: string[];
  reasons: string[];
  policyVersion: string;
}

type Candidate = Pick<MatchContext, 'scope' | 'sensitivity' | 'operation'>;
type DetailPart = Pick<MatchContext, 'has_detail' | 'action' | 'object_type' | 'object' | 'purpose' | 'history'>;
/** What the rules say about one scope across all details. */
interface Verdict { scope: string | null; deny: RuleInfo[]; review: RuleInfo[]; allow: RuleInfo[]; allowed: boolean }

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const bag = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {});

const amountOf = (d: DecisionDetail): number => {
  const a = bag(d.object).amount;
  return typeof a === 'number' && Number.isFinite(a) ? a : 0;
};

function detailParts(policy: CompiledPolicy, input: DecisionInput): DetailPart[] {
  const purpose = str(input.purpose);
  const facts = (action: string | null, object: Record<string, unknown>) => {
    const id = str(object.id);
    const type = str(object.type);
    const f: Record<string, unknown> = {
      user_object_actions: id !== null ? input.history?.userObjectActions[`${type ?? ''}:${id}`] ?? [] : [],
      task_action_count: action !== null ? input.history?.taskActionCounts[action] ?? 0 : 0,
    };
    // The running total includes every detail of this request with the same action and type: the token grants them all.
    if (action !== null && type !== null) {
      const here = input.details.filter((d) => d.action === action && bag(d.object).type === type).reduce((sum, d) => sum + amountOf(d), 0);
      for (const w of policy.amountWindows) f[amountTotalName(w)] = (input.history?.amountTotals?.[amountKey(w, action, type)] ?? 0) + here;
    }
    return f;
  };
  if (input.details.length === 0) return [{ has_detail: false, action: null, object_type: null, object: {}, purpose, history: facts(null, {}) }];
  // A detail's own purpose is the more specific statement; the task's purpose stands in when it has none.
  return input.details.map((d) => {
    const object = bag(d.object);
    return { has_detail: true, action: str(d.action), object_type: str(object.type), object, purpose: str(d.purpose) ?? purpose, history: facts(str(d.action), object) };
  });
}

function baseContext(input: DecisionInput): Omit<MatchContext, keyof Candidate | keyof DetailPart> {
  return {
    client: { id: input.client.id, name: input.client.name ?? null, grant_types: input.client.grant_types },
    user: { ...bag(input.user.claims), sub: input.user.sub },
    issuer: str(input.user.issuer),
    environment: str(input.environment),
    delegated: input.delegated === true,
    delegating: input.delegateTo !== undefined,
    delegate_to: str(input.delegateTo),
    request: input.request ?? (input.delegateTo !== undefined ? 'delegation' : 'tool_call'),
    in_task: input.inTask === true,
    now: input.now,
    source_ip: normaliseIp(input.sourceIp),
  };
}

/**
 * Per scope, every detail is checked: the token carries all its scopes with all its details, so a
 * holder can combine any scope with any detail, and each such pair must be allowed.
 */
function judge(policy: CompiledPolicy, resource: string, base: ReturnType<typeof baseContext>, c: Candidate, details: DetailPart[]): Verdict {
  const v: Verdict = { scope: c.scope, deny: [], review: [], allow: [], allowed: true };
  const hits = (effect: Effect, ctx: MatchContext, into: RuleInfo[]): boolean => {
    let any = false;
    for (const rule of policy.ability.rulesFor(effect, resource)) {
      if (!rule.matchesConditions(ctx)) continue;
      any = true;
      const info = policy.rules.get(rule.reason ?? '');
      if (info && !into.includes(info)) into.push(info);
    }
    return any;
  };
  for (const d of details) {
    const ctx: MatchContext = { ...base, ...c, ...d };
    hits('deny', ctx, v.deny);
    hits('review', ctx, v.review);
    if (!hits('allow', ctx, v.allow)) v.allowed = false;
  }
  return v;
}

const byIndex = (rules: Iterable<RuleInfo>): RuleInfo[] => [...new Set(rules)].sort((a, b) => a.index - b.index);
const reasonsOf = (rules: RuleInfo[]): string[] => [...new Set(byIndex(rules).map((r) => r.reason ?? ''))];

function ttlOf(policy: CompiledPolicy, rules: RuleInfo[]): number | undefined {
  const ttls = [policy.defaultTtl, ...rules.map((r) => r.ttl)].filter((t): t is number => t !== undefined);
  return ttls.length > 0 ? Math.min(...ttls) : undefined;
}

/**
 * Decides one request against a compiled policy: deny wins, then review, then every requested scope
 * needs an allow rule (default deny). With no scope requested, the resource's own scopes are the
 * candidates: the grant is those some allow rule gives and no deny or review rule touches (a
 * policy default the caller narrows further); only if none is left does a deny or review apply.
 */
export function decide(policy: CompiledPolicy, input: DecisionInput): Decision {
  const resource = input.resource.identifier;
  const known = new Map(input.resource.scopes.map((s) => [s.name, s]));
  const requested = [...new Set(input.requestedScopes)];
  const result = (outcome: Effect, matched: Iterable<RuleInfo>, reasons: string[], grantedScopes: string[] = [], ttl?: number): Decision => ({
    outcome, grantedScopes, ...(ttl !== undefined ? { ttl } : {}), matchedRules: byIndex(matched).map((r) => r.id), reasons, policyVersion: policy.version,
  });
  // The caller promises requested ⊆ resource scopes; fail closed if it did not.
  if (requested.some((s) => !known.has(s))) return result('deny', [], ['unknown_scope']);

  const toCandidate = (s: DecisionScope): Candidate => ({ scope: s.name, sensitivity: s.sensitivity, operation: s.operation });
  const candidates: Candidate[] = requested.length > 0
    ? requested.map((name) => toCandidate(known.get(name)!))
    : input.resource.scopes.length > 0 ? input.resource.scopes.map(toCandidate) : [{ scope: null, sensitivity: null, operation: null }];
  const base = baseContext(input);
  const details = detailParts(policy, input);
  const verdicts = candidates.map((c) => judge(policy, resource, base, c, details));
  const all = verdicts.flatMap((v) => [...v.deny, ...v.review, ...v.allow]);
  const deny = verdicts.flatMap((v) => v.deny);
  const review = verdicts.flatMap((v) => v.review);
  const noGrant = input.delegateTo !== undefined ? 'delegation_not_allowed' : 'no_matching_rule';

  if (requested.length === 0) {
    const granted = verdicts.filter((v) => v.allowed && v.deny.length === 0 && v.review.length === 0);
    if (granted.length > 0) {
      const scopes = granted.flatMap((v) => (v.scope === null ? [] : [v.scope]));
      return result('allow', all, [], scopes, ttlOf(policy, granted.flatMap((v) => v.allow)));
    }
  }
  if (deny.length > 0) return result('deny', all, reasonsOf(deny));
  if (review.length > 0) return result('review', all, reasonsOf(review));
  if (requested.length === 0 || verdicts.some((v) => !v.allowed)) return result('deny', all, [noGrant]);
  return result('allow', all, [], requested, ttlOf(policy, verdicts.flatMap((v) => v.allow)));
}
