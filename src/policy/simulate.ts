import { getClient } from '../registry/clients.ts';
import { SCOPE_STRING } from '../validate/common.ts';
import { check, compileSchema, ValidationError } from '../validate/schema.ts';
import type { Db } from '../store/db.ts';
import { compilePolicy, type CompiledPolicy } from './compile.ts';
import type { DecisionDetail } from './decide.ts';
import { parsePolicyDocument } from './document.ts';
import { agrees, recordedDecision, redecide } from './replay.ts';
import { decideRequest, type ContextBuilder, type RequestDecision, type Signal } from './request.ts';

const validate = compileSchema({
  type: 'object',
  additionalProperties: false,
  properties: {
    document: { type: 'string', minLength: 1, maxLength: 262_144 },
    // Re-decide one recorded exchange decision, from the context it was decided with.
    entry: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    client_id: { type: 'string', minLength: 1, maxLength: 128 },
    user: {
      type: 'object',
      additionalProperties: false,
      required: ['issuer', 'sub'],
      properties: { issuer: { type: 'string', maxLength: 2000 }, sub: { type: 'string', maxLength: 1000 }, claims: { type: 'object' } },
    },
    resource: { type: 'string', minLength: 1, maxLength: 2000 },
    scope: { type: 'string', maxLength: 4000, pattern: SCOPE_STRING },
    subject_scope: { type: 'string', maxLength: 4000, pattern: SCOPE_STRING },
    authorization_details: { type: 'array', maxItems: 20, items: { type: 'object', required: ['type'], properties: { type: { type: 'string' } } } },
    delegate_to: { type: 'string', maxLength: 128 },
    delegated: { type: 'boolean' },
    task: { type: 'string', minLength: 1, maxLength: 128 },
    review_id: { type: 'string', minLength: 1, maxLength: 128 },
    source_ip: { type: 'string', maxLength: 64 },
    environment: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    now: { type: 'string', maxLength: 64 },
  },
});

interface SimulateBody {
  document?: string;
  entry?: number;
  client_id?: string;
  user?: { issuer: string; sub: string; claims?: Record<string, unknown> };
  resource?: string;
  scope?: string;
  subject_scope?: string;
  authorization_details?: DecisionDetail[];
  delegate_to?: string;
  delegated?: boolean;
  task?: string;
  review_id?: string;
  source_ip?: string;
  environment?: string;
  now?: string;
}

export interface Simulation {
  decision: {
    outcome: RequestDecision['outcome'] | 'refused';
    /** Set when the request is refused before any decision (unknown target, scope beyond the ceiling). */
    error?: string;
    granted_scopes: string[];
    ttl: number | null;
    matched_rules: string[];
    reasons: string[];
    signals: Signal[];
    policy_version: string;
  };
  explanation: string;
  /** For `entry`: what was recorded, and whether this decision is the same. */
  recorded?: { seq: number; at: string; decision: unknown; outcome: unknown; granted_scope: unknown; reasons: unknown; agrees: boolean };
}

function draftOrCurrent(current: CompiledPolicy, document: string | undefined): CompiledPolicy {
  if (document === undefined) return current;
  try {
    return compilePolicy(parsePolicyDocument(document), 'draft');
  } catch (err) {
    if (err instanceof ValidationError) throw new ValidationError(`document: ${err.message}`, `document.${err.field ?? ''}`.replace(/\.$/, ''));
    throw err;
  }
}

function explain(d: RequestDecision): Simulation {
  const rules = d.matchedRules.length ? `rules matched: ${d.matchedRules.join(', ')}` : 'no rule matched';
  const signals = d.signals.length ? `; behaviour signals: ${d.signals.map((s) => `${s.rule} (${s.kind}, outcome ${s.outcome})`).join(', ')}` : '';
  const explanation = d.outcome === 'allow'
    ? `allowed under policy ${d.policyVersion}: grants ${d.grantedScopes.join(' ') || '(no scope)'}${d.ttl ? ` for at most ${d.ttl} s` : ''}; ${rules}${signals}`
    : `${d.outcome === 'review' ? 'needs review' : 'denied'} under policy ${d.policyVersion}: ${d.reasons.join(', ')}; ${rules}${signals}`;
  return {
    decision: {
      outcome: d.outcome, granted_scopes: d.grantedScopes, ttl: d.ttl ?? null, matched_rules: d.matchedRules, reasons: d.reasons,
      signals: d.signals, policy_version: d.policyVersion,
    },
    explanation,
  };
}

/**
 * Decides a hypothetical exchange against the policy in force, or a draft sent as `document`, exactly as
 * the exchange would now: its context comes from the exchange's own builder (target labels, the ceiling,
 * the task's and agent's standing, history, baselines), read from the stores as they are. With `entry`,
 * re-decides a recorded decision from the context it was decided with. Nothing is recorded or locked.
 * `environment` is the deployment's (configuration) unless the body names one.
 */
export async function simulate(db: Db, buildContext: ContextBuilder, current: CompiledPolicy, body: unknown, environment?: string): Promise<Simulation> {
  const input = check<SimulateBody>(validate, body);
  const policy = draftOrCurrent(current, input.document);
  if (input.entry !== undefined) {
    const extra = Object.keys(input).filter((k) => k !== 'entry' && k !== 'document');
    if (extra.length) throw new ValidationError(`${extra[0]} cannot be sent with entry: a recorded decision is re-decided from its own context`, extra[0]);
    const found = await recordedDecision(db, input.entry);
    if (!found) throw new ValidationError(`entry ${input.entry} is not a recorded exchange decision`, 'entry', 404, 'not_found');
    const p = found.payload;
    if (!p.context) throw new ValidationError(`entry ${input.entry} has no decision context (refused before a decision, or erased)`, 'entry', 409, 'conflict');
    const d = redecide(policy, p.context);
    return { ...explain(d), recorded: { seq: found.seq, at: found.at, decision: p.decision, outcome: p.outcome ?? null, granted_scope: p.granted_scope ?? [], reasons: p.reasons ?? [], agrees: agrees(p, d) } };
  }
  for (const field of ['client_id', 'user'] as const) if (input[field] === undefined) throw new ValidationError(`${field} is required`, field);
  const target = input.delegate_to ?? input.resource;
  if (target === undefined) throw new ValidationError('resource is required (or delegate_to, for a delegation)', 'resource');
  if (input.delegate_to !== undefined && input.resource !== undefined) throw new ValidationError('send resource or delegate_to, not both: a delegation\'s target is the agent', 'delegate_to');
  const client = await getClient(db, input.client_id!);
  if (!client) throw new ValidationError(`client ${input.client_id} is not registered`, 'client_id');
  const now = input.now ? new Date(input.now) : new Date();
  if (Number.isNaN(now.getTime())) throw new ValidationError('now must be an ISO 8601 date-time', 'now');
  const built = await buildContext(policy, {
    client,
    user: { issuer: input.user!.issuer, sub: input.user!.sub, claims: input.user!.claims ?? {} },
    ...(input.subject_scope !== undefined ? { subjectScopes: input.subject_scope.split(' ').filter(Boolean) } : {}),
    target,
    ...(input.scope ? { requestedScopes: input.scope.split(' ') } : {}),
    details: input.authorization_details ?? [],
    delegated: input.delegated ?? false,
    ...(input.source_ip ? { sourceIp: input.source_ip } : {}),
    // The deployment's environment, as a real exchange here sees it, unless the body names another.
    ...((input.environment ?? environment) ? { environment: input.environment ?? environment } : {}),
    now,
    ...(input.task ? { task: input.task } : {}),
    ...(input.review_id ? { reviewId: input.review_id } : {}),
  });
  if (!built.ok) {
    if (built.error === 'invalid_target' && input.delegate_to === undefined) throw new ValidationError(`resource ${target} is not registered`, 'resource');
    return {
      decision: { outcome: 'refused', error: built.error, granted_scopes: [], ttl: null, matched_rules: [], reasons: [], signals: [], policy_version: policy.version },
      explanation: `refused before any decision (${built.error}): ${built.description}`,
    };
  }
  return explain(decideRequest(policy, built.input));
}
