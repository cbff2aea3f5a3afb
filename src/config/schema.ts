// The configuration file's shape. Validated once at load; the rest of the code trusts `Config`.
const bucket = {
  type: 'object',
  additionalProperties: false,
  required: ['burst', 'per_second'],
  properties: {
    burst: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    per_second: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 },
  },
} as const;

export const fileSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tokens: {
      type: 'object',
      additionalProperties: false,
      properties: { access_token_ttl: { type: 'integer', minimum: 10, maximum: 86_400 } },
    },
    keys: {
      type: 'object',
      additionalProperties: false,
      properties: {
        algorithm: { enum: ['ES256', 'EdDSA'] },
        rotation_overlap: { type: 'integer', minimum: 0, maximum: 7 * 86_400 },
        min_rotation_overlap: { type: 'integer', minimum: 0, maximum: 86_400 },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: { body_bytes: { type: 'integer', minimum: 1024, maximum: 10_485_760 } },
    },
    database: {
      type: 'object',
      additionalProperties: false,
      properties: { pool_max: { type: 'integer', minimum: 1, maximum: 500 } },
    },
    server: {
      type: 'object',
      additionalProperties: false,
      properties: {
        shutdown_timeout: { type: 'integer', minimum: 1, maximum: 3600 },
        keep_alive_timeout: { type: 'integer', minimum: 1, maximum: 3600 },
        max_concurrency: { type: 'integer', minimum: 1, maximum: 100_000 },
        max_queue_delay_ms: { type: 'integer', minimum: 0, maximum: 60_000 },
      },
    },
    rate_limits: {
      type: 'object',
      additionalProperties: false,
      properties: { token: bucket, token_per_address: bucket, admin: bucket },
    },
    oidc_sweep_interval: { type: 'integer', minimum: 1, maximum: 86_400 },
    exchange: {
      type: 'object',
      additionalProperties: false,
      properties: {
        require_intent: { type: 'boolean' },
        intent_max_length: { type: 'integer', minimum: 1, maximum: 10_000 },
        max_delegation_depth: { type: 'integer', minimum: 1, maximum: 20 },
        max_token_bytes: { type: 'integer', minimum: 1024, maximum: 65_536 },
        max_details_bytes: { type: 'integer', minimum: 256, maximum: 65_536 },
        clock_skew: { type: 'integer', minimum: 0, maximum: 600 },
        dpop_proof_max_age: { type: 'integer', minimum: 1, maximum: 600 },
        client_assertion_max_lifetime: { type: 'integer', minimum: 1, maximum: 3600 },
      },
    },
    // Declared RFC 9396 types: each a JSON Schema the details of that type must satisfy.
    authorization_details_types: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9_.:/-]{1,128}$' },
      additionalProperties: { type: 'object' },
    },
    policy: {
      type: 'object',
      additionalProperties: false,
      properties: { file: { type: 'string', minLength: 1 } },
    },
    development_issuer: { type: 'boolean' },
    // The deployment's environment (`production`, `staging`, ...), which policy rules match with `environment`.
    environment: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    ledger: {
      type: 'object',
      additionalProperties: false,
      properties: {
        checkpoint_every: { type: 'integer', minimum: 1, maximum: 10_000_000 },
        checkpoint_interval: { type: 'integer', minimum: 1, maximum: 86_400 },
        auth_failure_interval: { type: 'integer', minimum: 1, maximum: 3600 },
      },
    },
  },
} as const;
