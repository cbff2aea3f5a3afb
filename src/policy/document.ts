import { checkAbsoluteUri } from '../validate/common.ts';
import { compileSchema, ValidationError } from '../validate/schema.ts';
import { parseAttributes } from './attributes.ts';
import { compileCidrs } from './net.ts';
import { documentSchema, policyError } from './schema.ts';
import { compileTimeWindow, type TimeSpec } from './time.ts';
import { loadYaml } from './yaml.ts';

export type OneOrMany<T> = T | T[];
export type Effect = 'allow' | 'deny' | 'review';
export type Sensitivity = 'public' | 'internal' | 'confidential' | 'restricted';

/** Attribute condition maps keep their raw form here; `attributes.ts` validates and compiles them. */
export interface PolicyWhen {
  action?: OneOrMany<string>;
  object_type?: OneOrMany<string>;
  object?: Record<string, unknown>;
  purpose?: OneOrMany<string>;
  sensitivity?: OneOrMany<Sensitivity>;
  operation?: OneOrMany<'read' | 'write'>;
  client?: { id?: unknown; name?: unknown; grant_types?: unknown };
  user?: Record<string, unknown>;
  history?: { user_object_actions?: unknown; task_action_count?: unknown; amount_total?: unknown; within?: number };
  issuer?: OneOrMany<string>;
  environment?: OneOrMany<string>;
  delegated?: boolean;
  request?: OneOrMany<'task' | 'tool_call' | 'delegation'>;
  in_task?: boolean;
  time?: TimeSpec;
  source_ip?: OneOrMany<string>;
}
export interface PolicyRule {
  id: string;
  effect: Effect;
  description?: string;
  resource?: OneOrMany<string>;
  scopes?: OneOrMany<string>;
  reason?: string;
  ttl?: number;
  delegate_to?: OneOrMany<string>;
  suspend_task?: boolean;
  when?: PolicyWhen;
}
export interface BehaviourRule {
  id: string;
  description?: string;
  repeated_denials?: { count: number; within: number };
  volume?: { count: number; within: number };
  baseline?: { within: number; min_grants: number };
  /** What the counter counts over and what the outcome holds: one task (default) or the agent for this user. */
  per?: 'task' | 'agent';
  outcome: 'suspend' | 'downgrade' | 'review';
}

export interface PolicyDocument {
  version: 1;
  default_ttl?: number;
  task_ttl?: number;
  rules: PolicyRule[];
  behaviour?: BehaviourRule[];
}

const validateDocument = compileSchema(documentSchema);

export const asList = <T>(v: OneOrMany<T> | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The history fact a `history.amount_total` condition with `within: W` reads (one per window). */
export const amountTotalName = (within: number): string => `amount_total:${within}`;

/** `when.history` as the matcher sees it: `amount_total` is named for its window (`within` is no attribute). */
export function historyAttributes(h: PolicyWhen['history']): Record<string, unknown> {
  const { within, amount_total, ...rest } = h ?? {};
  return amount_total === undefined ? rest : { ...rest, [amountTotalName(within as number)]: amount_total };
}

/** Checks what the schema cannot say: cross-field rules per effect, and the value formats. */
function checkRule(rule: PolicyRule, at: string): void {
  const fail = (field: string, message: string): never => {
    throw new ValidationError(`${at}.${field} ${message}`, `${at}.${field}`);
  };
  if (rule.effect === 'allow') {
    if (rule.reason !== undefined) fail('reason', 'is only allowed on deny and review rules');
    if (rule.scopes === undefined) fail('scopes', 'is required for allow rules');
  } else {
    if (rule.reason === undefined) fail('reason', `is required for ${rule.effect} rules`);
    if (rule.ttl !== undefined) fail('ttl', 'is only allowed on allow rules');
    if (rule.delegate_to !== undefined) fail('delegate_to', 'is only allowed on allow rules');
  }
  if (rule.suspend_task !== undefined && rule.effect !== 'deny') fail('suspend_task', 'is only allowed on deny rules');
  // A rule that can never match is a mistake, not a policy: a delegation's target is the agent, never a resource.
  if (rule.delegate_to !== undefined && rule.resource !== undefined) {
    fail('resource', `makes rule ${rule.id} unable to ever match: a delegation is decided with the target agent:<client_id>, never a resource; drop resource and name the agents in delegate_to`);
  }
  const scopes = asList(rule.scopes);
  if (scopes.includes('*') && scopes.length > 1) fail('scopes', 'must not list other scopes next to "*"');
  asList(rule.resource).forEach((r, i) => {
    checkAbsoluteUri(r, Array.isArray(rule.resource) ? `${at}.resource.${i}` : `${at}.resource`);
  });
  const when = rule.when;
  if (!when) return;
  if (when.object) parseAttributes(when.object, `${at}.when.object`);
  if (when.user) parseAttributes(when.user, `${at}.when.user`);
  if (when.client) parseAttributes(when.client, `${at}.when.client`);
  if (when.history) {
    if ((when.history.amount_total === undefined) !== (when.history.within === undefined)) {
      fail('when.history', 'needs within (seconds) exactly when it has amount_total');
    }
    parseAttributes(historyAttributes(when.history), `${at}.when.history`);
  }
  if (when.time) compileTimeWindow(when.time, `${at}.when.time`);
  if (when.source_ip) compileCidrs(asList(when.source_ip), `${at}.when.source_ip`);
}

/** Validates an already-parsed policy document (YAML or JSON); throws ValidationError naming the field. */
export function validatePolicyDocument(value: unknown): PolicyDocument {
  if (!validateDocument(value)) {
    const { field, message } = policyError(validateDocument.errors);
    throw new ValidationError(field ? `${field} ${message}` : `policy ${message}`, field);
  }
  const doc = value as unknown as PolicyDocument;
  const seen = new Set<string>();
  doc.rules.forEach((rule, i) => {
    if (seen.has(rule.id)) throw new ValidationError(`rules.${i}.id duplicates ${rule.id}`, `rules.${i}.id`);
    seen.add(rule.id);
    checkRule(rule, `rules.${i}`);
  });
  (doc.behaviour ?? []).forEach((b, i) => {
    if ([b.repeated_denials, b.volume, b.baseline].filter((x) => x !== undefined).length !== 1) {
      throw new ValidationError(`behaviour.${i} needs exactly one of repeated_denials, volume and baseline`, `behaviour.${i}`);
    }
    if (seen.has(b.id)) throw new ValidationError(`behaviour.${i}.id duplicates ${b.id}`, `behaviour.${i}.id`);
    seen.add(b.id);
  });
  return doc;
}

/** Parses and validates a policy document written in YAML. */
export function parsePolicyDocument(text: string): PolicyDocument {
  return validatePolicyDocument(loadYaml(text, 'policy'));
}
