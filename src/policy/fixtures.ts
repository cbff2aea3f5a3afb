import { ID_PATTERN, SCOPE_TOKEN } from '../validate/common.ts';
import { compileSchema, ValidationError } from '../validate/schema.ts';
import type { CompiledPolicy } from './compile.ts';
import type { Decision, DecisionInput, DecisionScope } from './decide.ts';
import { strictestLabels } from './labels.ts';
import { decideRequest } from './request.ts';
import { policyError, SENSITIVITIES } from './schema.ts';
import { loadYaml } from './yaml.ts';

/**
 * Fixture file:
 *   resources: [{identifier, scopes: [{name, sensitivity, operation}]}]   # optional, referenced by identifier
 *   agents: [{client_id, scope}]                                           # optional: a delegate's scopes
 *   defaults: <partial input>                                             # optional, merged under each case's input
 *   cases: [{name, input: <DecisionInput, now as ISO string, resource as object or identifier>,
 *            expect: {outcome, granted_scopes?, reasons?, ttl?, matched_rules?}}]
 * List expectations compare as sets; `ttl: null` expects no ttl.
 */
export interface FixtureExpectation {
  outcome: Decision['outcome'];
  granted_scopes?: string[];
  reasons?: string[];
  ttl?: number | null;
  matched_rules?: string[];
}
export interface FixtureReport {
  passed: number;
  failed: Array<{ name: string; expected: unknown; actual: Decision }>;
}

const text = { type: 'string', minLength: 1, maxLength: 2000 };
const strings = { type: 'array', maxItems: 256, items: text };
const resource = {
  type: 'object',
  additionalProperties: false,
  required: ['identifier', 'scopes'],
  properties: {
    identifier: text,
    scopes: {
      type: 'array',
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'sensitivity', 'operation'],
        properties: { name: { type: 'string', pattern: SCOPE_TOKEN }, sensitivity: { enum: SENSITIVITIES }, operation: { enum: ['read', 'write'] } },
      },
    },
  },
};
const standing = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: { status: { enum: ['active', 'suspended', 'downgraded'] }, review_id: { type: ['string', 'null'] } },
};
const input = {
  type: 'object',
  additionalProperties: false,
  properties: {
    requestedScopes: strings,
    resource: { anyOf: [text, resource] },
    client: {
      type: 'object',
      additionalProperties: false,
      required: ['id'],
      properties: { id: text, name: { type: ['string', 'null'] }, grant_types: strings },
    },
    user: {
      type: 'object',
      additionalProperties: false,
      required: ['issuer', 'sub'],
      properties: { issuer: text, sub: text, claims: { type: 'object' } },
    },
    details: { type: 'array', maxItems: 64, items: { type: 'object', required: ['type'], properties: { type: text } } },
    purpose: text,
    environment: text,
    delegated: { type: 'boolean' },
    delegateTo: { type: 'string', pattern: ID_PATTERN },
    sourceIp: text,
    now: text,
    // What the exchange's context builder reads from the stores, given outright.
    history: { type: 'object' },
    task: standing,
    agent: standing,
    baseline: { type: 'object' },
    review: { type: 'object', additionalProperties: false, required: ['id', 'state'], properties: { id: text, state: text } },
  },
};
const validateFixtures = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['cases'],
  properties: {
    resources: { type: 'array', maxItems: 256, items: resource },
    agents: {
      type: 'array',
      maxItems: 256,
      items: { type: 'object', additionalProperties: false, required: ['client_id', 'scope'], properties: { client_id: { type: 'string', pattern: ID_PATTERN }, scope: { type: 'string', maxLength: 4000 } } },
    },
    defaults: input,
    cases: {
      type: 'array',
      minItems: 1,
      maxItems: 10_000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'input', 'expect'],
        properties: {
          name: text,
          input,
          expect: {
            type: 'object',
            additionalProperties: false,
            required: ['outcome'],
            properties: {
              outcome: { enum: ['allow', 'deny', 'review'] },
              granted_scopes: strings,
              reasons: strings,
              ttl: { type: ['integer', 'null'] },
              matched_rules: strings,
            },
          },
        },
      },
    },
  },
});

type RawInput = Omit<Partial<DecisionInput>, 'resource' | 'now'> & {
  resource?: string | DecisionInput['resource'];
  now?: string;
};
interface FixtureFile {
  resources?: DecisionInput['resource'][];
  agents?: Array<{ client_id: string; scope: string }>;
  defaults?: RawInput;
  cases: Array<{ name: string; input: RawInput; expect: FixtureExpectation }>;
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * A case's input as a real exchange builds it: a delegation (`delegateTo`) is decided with the target
 * `agent:<client_id>` and the delegate's scopes labelled the strictest way any resource labels them,
 * whatever `resource` says; the task's and agent's standing default to active.
 */
function toInput(raw: RawInput, resources: Map<string, DecisionInput['resource']>, agents: Map<string, string[]>, at: string): DecisionInput {
  const missing = (key: string, why = 'is required'): ValidationError => new ValidationError(`${at}.${key} ${why}`, `${at}.${key}`);
  const res = raw.delegateTo !== undefined
    ? { identifier: `agent:${raw.delegateTo}`, scopes: strictestLabels([...resources.values()].map((r) => r.scopes), agents.get(raw.delegateTo)) }
    : typeof raw.resource === 'string' ? resources.get(raw.resource) : raw.resource;
  if (!res) throw typeof raw.resource === 'string' ? missing('resource', 'names no entry of resources') : missing('resource');
  if (!raw.client) throw missing('client');
  if (!raw.user) throw missing('user');
  if (raw.now === undefined) throw missing('now');
  const now = new Date(raw.now);
  if (!ISO_INSTANT.test(raw.now) || Number.isNaN(now.getTime())) {
    throw new ValidationError(`${at}.now must be an ISO 8601 instant with a zone`, `${at}.now`);
  }
  return {
    ...raw,
    requestedScopes: raw.requestedScopes ?? [],
    resource: { identifier: res.identifier, scopes: res.scopes as DecisionScope[] },
    client: { ...raw.client, grant_types: raw.client.grant_types ?? [] },
    user: { ...raw.user, claims: raw.user.claims ?? {} },
    details: raw.details ?? [],
    delegated: raw.delegated ?? false,
    now,
  };
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  new Set(a).size === new Set(b).size && a.every((x) => b.includes(x));

function meets(actual: Decision, e: FixtureExpectation): boolean {
  if (actual.outcome !== e.outcome) return false;
  if (e.granted_scopes && !sameSet(actual.grantedScopes, e.granted_scopes)) return false;
  if (e.reasons && !sameSet(actual.reasons, e.reasons)) return false;
  if (e.matched_rules && !sameSet(actual.matchedRules, e.matched_rules)) return false;
  if (e.ttl !== undefined && (actual.ttl ?? null) !== e.ttl) return false;
  return true;
}

/** Runs every fixture case against the policy; a malformed fixture file throws ValidationError. */
export function runFixtures(policy: CompiledPolicy, fixturesText: string): FixtureReport {
  const value = loadYaml(fixturesText, 'fixtures');
  if (!validateFixtures(value)) {
    const { field, message } = policyError(validateFixtures.errors);
    throw new ValidationError(field ? `${field} ${message}` : `fixtures ${message}`, field);
  }
  const file = value as unknown as FixtureFile;
  const resources = new Map((file.resources ?? []).map((r) => [r.identifier, r]));
  const agents = new Map((file.agents ?? []).map((a) => [a.client_id, a.scope.split(' ').filter(Boolean)]));
  const report: FixtureReport = { passed: 0, failed: [] };
  file.cases.forEach((c, i) => {
    const actual = decideRequest(policy, toInput({ ...file.defaults, ...c.input }, resources, agents, `cases.${i}.input`));
    if (meets(actual, c.expect)) report.passed += 1;
    else report.failed.push({ name: c.name, expected: c.expect, actual });
  });
  return report;
}
