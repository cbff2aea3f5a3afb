import { getClient } from '../registry/clients.ts';
import { SCOPE_STRING } from '../registry/common.ts';
import { getResource } from '../registry/resources.ts';
import { check, compileSchema, ValidationError } from '../registry/validate.ts';
import type { Db } from '../store/db.ts';
import { compilePolicy, type CompiledPolicy } from './compile.ts';
import { decide, type Decision, type DecisionDetail } from './decide.ts';
import { parsePolicyDocument } from './document.ts';

const validate = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['client_id', 'user', 'resource'],
  properties: {
    document: { type: 'string', minLength: 1, maxLength: 262_144 },
    client_id: { type: 'string', minLength: 1, maxLength: 128 },
    user: {
      type: 'object',
      additionalProperties: false,
      required: ['issuer', 'sub'],
      properties: { issuer: { type: 'string', maxLength: 2000 }, sub: { type: 'string', maxLength: 1000 }, claims: { type: 'object' } },
    },
    resource: { type: 'string', minLength: 1, maxLength: 2000 },
    scope: { type: 'string', maxLength: 4000, pattern: SCOPE_STRING },
    authorization_details: { type: 'array', maxItems: 20, items: { type: 'object', required: ['type'], properties: { type: { type: 'string' } } } },
    delegate_to: { type: 'string', maxLength: 128 },
    delegated: { type: 'boolean' },
    source_ip: { type: 'string', maxLength: 64 },
    environment: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    now: { type: 'string', maxLength: 64 },
  },
});

interface SimulateBody {
  document?: string;
  client_id: string;
  user: { issuer: string; sub: string; claims?: Record<string, unknown> };
  resource: string;
  scope?: string;
  authorization_details?: DecisionDetail[];
  delegate_to?: string;
  delegated?: boolean;
  source_ip?: string;
  environment?: string;
  now?: string;
}

export interface Simulation {
  decision: { outcome: Decision['outcome']; granted_scopes: string[]; ttl: number | null; matched_rules: string[]; reasons: string[]; policy_version: string };
  explanation: string;
}

/**
 * Evaluates a hypothetical exchange against the policy in force, or a draft sent as `document`, with
 * the registered client and resource, and explains the outcome in a sentence. Nothing is recorded.
 */
/** `environment` is the deployment's (config), as a real exchange here would see it, unless the body names one. */
export async function simulate(db: Db, current: CompiledPolicy, body: unknown, environment?: string): Promise<Simulation> {
  const input = check<SimulateBody>(validate, body);
  let policy = current;
  if (input.document !== undefined) {
    try {
      policy = compilePolicy(parsePolicyDocument(input.document), 'draft');
    } catch (err) {
      if (err instanceof ValidationError) throw new ValidationError(`document: ${err.message}`, `document.${err.field ?? ''}`.replace(/\.$/, ''));
      throw err;
    }
  }
  const client = await getClient(db, input.client_id);
  if (!client) throw new ValidationError(`client ${input.client_id} is not registered`, 'client_id');
  const resource = await getResource(db, input.resource);
  if (!resource) throw new ValidationError(`resource ${input.resource} is not registered`, 'resource');
  const now = input.now ? new Date(input.now) : new Date();
  if (Number.isNaN(now.getTime())) throw new ValidationError('now must be an ISO 8601 date-time', 'now');
  const decision = decide(policy, {
    requestedScopes: input.scope ? input.scope.split(' ') : [],
    resource: { identifier: resource.identifier, scopes: resource.scopes },
    client: { id: client.client_id, name: client.client_name, grant_types: client.grant_types },
    user: { issuer: input.user.issuer, sub: input.user.sub, claims: input.user.claims ?? {} },
    details: input.authorization_details ?? [],
    delegated: input.delegated ?? false,
    ...(input.delegate_to ? { delegateTo: input.delegate_to } : {}),
    ...(input.source_ip ? { sourceIp: input.source_ip } : {}),
    ...((input.environment ?? environment) ? { environment: input.environment ?? environment } : {}),
    now,
  });
  const rules = decision.matchedRules.length ? `rules matched: ${decision.matchedRules.join(', ')}` : 'no rule matched';
  const explanation = decision.outcome === 'allow'
    ? `allowed under policy ${decision.policyVersion}: grants ${decision.grantedScopes.join(' ') || '(no scope)'}${decision.ttl ? ` for at most ${decision.ttl} s` : ''}; ${rules}`
    : `${decision.outcome === 'review' ? 'needs review' : 'denied'} under policy ${decision.policyVersion}: ${decision.reasons.join(', ')}; ${rules}`;
  return {
    decision: {
      outcome: decision.outcome,
      granted_scopes: decision.grantedScopes,
      ttl: decision.ttl ?? null,
      matched_rules: decision.matchedRules,
      reasons: decision.reasons,
      policy_version: decision.policyVersion,
    },
    explanation,
  };
}
