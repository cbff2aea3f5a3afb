import type { ErrorObject } from 'ajv';
import { ID_PATTERN, SCOPE_TOKEN } from '../validate/common.ts';
import { firstError } from '../validate/schema.ts';

// Structure only: additionalProperties is false everywhere. Attribute conditions (`object`, `user`,
// `client` values), CIDRs, hours and time zones are checked in code, where the messages can be precise.

const text = { type: 'string', minLength: 1, maxLength: 2000 };
/** A value or a non-empty list of them; the anyOf is reported by `policyError` as one message. */
export const oneOrMany = (item: object): object => ({
  anyOf: [item, { type: 'array', minItems: 1, maxItems: 256, items: item }],
});
const strings = oneOrMany(text);
/** Free-form attribute names (claims can be URLs); the prototype's names are refused outright. */
const attrMap = {
  type: 'object',
  maxProperties: 64,
  propertyNames: {
    type: 'string',
    pattern: '^[A-Za-z0-9_$][A-Za-z0-9_.:/#$-]{0,255}$',
    not: { enum: ['__proto__', 'constructor', 'prototype'] },
  },
};
export const SENSITIVITIES = ['public', 'internal', 'confidential', 'restricted'] as const;
export const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

const when = {
  type: 'object',
  additionalProperties: false,
  properties: {
    action: strings,
    object_type: strings,
    object: attrMap,
    purpose: strings,
    sensitivity: oneOrMany({ enum: SENSITIVITIES }),
    operation: oneOrMany({ enum: ['read', 'write'] }),
    client: { type: 'object', additionalProperties: false, properties: { id: {}, name: {}, grant_types: {} } },
    user: attrMap,
    // Facts from the ledger: what the same user was granted on this object, and what this task did.
    history: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      // amount_total: the running total of object.amount over `within` seconds (this request included).
      properties: { user_object_actions: {}, task_action_count: {}, amount_total: {}, within: { type: 'integer', minimum: 1, maximum: 31_622_400 } },
    },
    issuer: strings,
    environment: strings,
    delegated: { type: 'boolean' },
    // What is asked for: starting a task, a token for a resource (a tool call), or a delegation token.
    request: oneOrMany({ enum: ['task', 'tool_call', 'delegation'] }),
    // The request is made within a task (with its task token, or a token derived from one).
    in_task: { type: 'boolean' },
    time: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        days: oneOrMany({ enum: DAYS }),
        hours: { type: 'string', maxLength: 11 },
        tz: { type: 'string', minLength: 1, maxLength: 64 },
      },
    },
    source_ip: oneOrMany({ type: 'string', minLength: 1, maxLength: 64 }),
  },
};

const rule = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'effect'],
  properties: {
    id: { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$' },
    effect: { enum: ['allow', 'deny', 'review'] },
    description: { type: 'string', maxLength: 2000 },
    resource: strings,
    scopes: oneOrMany({ type: 'string', pattern: SCOPE_TOKEN }),
    reason: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,63}$' },
    ttl: { type: 'integer', minimum: 10, maximum: 86_400 },
    delegate_to: oneOrMany({ type: 'string', pattern: ID_PATTERN }),
    // A behaviour rule: when this deny matches, the whole task is suspended for a person to review.
    suspend_task: { type: 'boolean' },
    when,
  },
};

const counter = {
  type: 'object',
  additionalProperties: false,
  required: ['count', 'within'],
  properties: { count: { type: 'integer', minimum: 1, maximum: 100_000 }, within: { type: 'integer', minimum: 1, maximum: 86_400 } },
};

export const documentSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'rules'],
  properties: {
    version: { const: 1 },
    default_ttl: { type: 'integer', minimum: 10, maximum: 86_400 },
    // How long a task token lives (never beyond the user's token); default one hour.
    task_ttl: { type: 'integer', minimum: 60, maximum: 86_400 },
    rules: { type: 'array', maxItems: 1000, items: rule },
    // Behaviour counters over a task's recorded decisions, with what happens when one trips.
    behaviour: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'outcome'],
        properties: {
          id: { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$' },
          description: { type: 'string', maxLength: 2000 },
          repeated_denials: counter,
          volume: counter,
          // Baseline drift: a resource or sensitivity level this agent was never granted for the purpose.
          baseline: {
            type: 'object',
            additionalProperties: false,
            required: ['within', 'min_grants'],
            properties: { within: { type: 'integer', minimum: 60, maximum: 31_622_400 }, min_grants: { type: 'integer', minimum: 1, maximum: 1_000_000 } },
          },
          per: { enum: ['task', 'agent'] },
          outcome: { enum: ['suspend', 'downgrade', 'review'] },
        },
      },
    },
  },
};

const dotted = (pointer: string): string => pointer.replace(/^\//, '').replaceAll('/', '.');

/**
 * Turns ajv's errors into one `{field, message}`. Beyond `firstError`, it reads our anyOf
 * (value-or-list) failures: a mistake inside a list names the list item, a wrong value names it,
 * and a wrong type says what is expected instead of "must be string".
 */
export function policyError(errors: ErrorObject[] | null | undefined): { field: string | undefined; message: string } {
  const list = errors ?? [];
  const anyOf = list.find((e) => e.keyword === 'anyOf');
  const named = list.find((e) => e.keyword === 'propertyNames' || e.params?.propertyName !== undefined);
  if (named) {
    const base = dotted(named.instancePath);
    const name = String(named.params.propertyName);
    return { field: base ? `${base}.${name}` : name, message: 'is not a valid attribute name' };
  }
  if (!anyOf) return firstError(list);
  const branches = list.filter((e) => e !== anyOf && e.instancePath.startsWith(anyOf.instancePath));
  const deeper = branches.find((e) => e.instancePath !== anyOf.instancePath);
  if (deeper) return firstError([deeper]);
  const wrongValue = branches.find((e) => e.keyword !== 'type');
  if (wrongValue) return firstError([wrongValue]);
  return { field: dotted(anyOf.instancePath) || undefined, message: 'must be a value or a non-empty list of values' };
}
