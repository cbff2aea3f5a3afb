import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileConfig } from './index.ts';

// Every configuration default, in one place. A configuration file (and a test's overrides) is merged over
// this deeply, so a file that sets one key keeps every other default. config/default.yaml is the
// commented copy of these values; a test keeps the two equal.

/** The repository's (or installed package's) root, for files shipped with intentgate. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The shipped example policy: seeded when neither file nor overrides name one. */
export const SHIPPED_POLICY = path.join(PACKAGE_ROOT, 'config/policies/default.yaml');

type Complete<T> = { [K in keyof T]-?: Full<NonNullable<T[K]>> };
type Full<V> = V extends object ? (string extends keyof V ? V : Complete<V>) : V;
/** Every key has a default except `environment` (unset unless declared) and `policy.file` (the shipped one). */
export type Resolved = Complete<Omit<FileConfig, 'policy' | 'environment'>> & Pick<FileConfig, 'policy' | 'environment'>;

export const DEFAULTS: Resolved = {
  tokens: { access_token_ttl: 300 },
  keys: { algorithm: 'ES256', rotation_overlap: 600, min_rotation_overlap: 60 },
  server: { shutdown_timeout: 8, keep_alive_timeout: 65, max_concurrency: 64, max_queue_delay_ms: 50 },
  limits: { body_bytes: 65536 },
  database: { pool_max: 20 },
  rate_limits: {
    token: { burst: 200, per_second: 100 },
    token_per_address: { burst: 2000, per_second: 1000 },
    admin: { burst: 60, per_second: 30 },
  },
  oidc_sweep_interval: 300,
  exchange: {
    require_intent: true,
    intent_max_length: 1000,
    max_delegation_depth: 5,
    max_token_bytes: 16_384,
    max_details_bytes: 16_384,
    clock_skew: 60,
    dpop_proof_max_age: 60,
    client_assertion_max_lifetime: 300,
  },
  development_issuer: true,
  authorization_details_types: {
    tool_call: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'action'],
      properties: {
        type: { const: 'tool_call' },
        action: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,63}$' },
        tool: { type: 'string', maxLength: 128 },
        purpose: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,63}$' },
        object: {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$' },
            id: { type: 'string', maxLength: 256 },
            amount: { type: 'number' },
            currency: { type: 'string', pattern: '^[A-Z]{3}$' },
            owner: { type: 'string', maxLength: 256 },
          },
        },
      },
    },
  },
  ledger: { checkpoint_every: 1000, checkpoint_interval: 60, auth_failure_interval: 60 },
};

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `over` merged into `base`, object by object; lists and scalars replace. A detail type's JSON Schema is a
 * value, not configuration to merge into: a file that declares `tool_call` replaces its schema whole, and
 * keeps the other declared types.
 */
export function mergeConfig<T>(base: T, over: unknown, at: readonly string[] = []): T {
  if (over === undefined) return base;
  const schemaOfType = at.length === 2 && at[0] === 'authorization_details_types';
  if (!isPlainObject(base) || !isPlainObject(over) || schemaOfType) return over as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = mergeConfig(out[k], v, [...at, k]);
  }
  return out as T;
}
