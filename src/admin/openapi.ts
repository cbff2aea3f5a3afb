// The admin API described as OpenAPI 3.1 (JSON Schema 2020-12), served at GET /admin/api/openapi.json.
// test/foundation/openapi.test.ts checks that every route is here and that real answers match it.

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: object) => ({ oneOf: [{ type: 'null' }, schema] });
const str = { type: 'string' } as const;
const strList = { type: 'array', items: str } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const person = {
  type: 'object', additionalProperties: false, required: ['issuer', 'sub'],
  properties: { issuer: str, sub: str },
} as const;
const page = (item: object) => ({
  type: 'object', additionalProperties: false, required: ['items', 'next_cursor'],
  properties: { items: { type: 'array', items: item }, next_cursor: nullable(str) },
});

const json = (schema: object, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(ref('Error'), description);
const body = (schema: object, required = true) => ({ required, content: { 'application/json': { schema } } });
/** Every operation may also answer these. */
const common = {
  400: error('invalid input (`field` names it)'),
  401: error('no admin bearer, or one not valid'),
  403: error('the credential\'s role may not call this'),
  429: error('too many requests; see Retry-After'),
  503: error('storage unavailable; see Retry-After'),
};
const op = (summary: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ summary, ...extra, responses: { ...responses, ...common } });
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: str });
const query = (name: string, description: string) => ({ name, in: 'query', required: false, description, schema: str });
const pageParams = [query('limit', '1-200'), query('cursor', 'next_cursor of the previous page')];

const adminRequired = ['id', 'name', 'role', 'created_at', 'created_by', 'revoked_at', 'user'];
const adminProperties = { id: str, name: str, role: ref('Role'), created_at: dateTime, created_by: nullable(str), revoked_at: nullable(dateTime), user: nullable(person) };

const clientFields = {
  client_name: nullable({ type: 'string', maxLength: 200 }),
  grant_types: { type: 'array', items: str, minItems: 1 },
  scope: str,
  token_endpoint_auth_method: { enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] },
  jwks: nullable(ref('Jwks')),
  resource_server: nullable(str),
};
const resourceFields = {
  name: str,
  scopes: { type: 'array', items: ref('ResourceScope') },
  access_token_ttl: nullable({ type: 'integer' }),
};
const issuerFields = {
  jwks: nullable(ref('Jwks')),
  jwks_uri: nullable(str),
  algorithms: strList,
  audiences: strList,
  typs: strList,
  scope_claim: { enum: ['scope', 'scp'] },
};

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'intentgate admin API',
    version: '1',
    description: 'JSON in and out. POST creates (201), PATCH updates part, DELETE answers 204. Lists answer {items, next_cursor}. Unknown fields are refused. Errors are {error, error_description, field}.',
  },
  servers: [{ url: '/' }],
  security: [{ adminBearer: [] }],
  paths: {
    '/admin/api/openapi.json': {
      get: { summary: 'This document', security: [], responses: { 200: json({ type: 'object' }) } },
    },
    '/admin/api/admins': {
      get: op('List admin credentials', { 200: json(page(ref('Admin'))) }, { parameters: pageParams }),
      post: op('Create an admin credential; the token is in this answer only', { 201: json(ref('AdminWithToken'), 'Created') }, {
        requestBody: body({ type: 'object', additionalProperties: false, required: ['name'], properties: { name: str, role: ref('Role'), user: person } }),
      }),
    },
    '/admin/api/admins/{id}': {
      patch: op('Change a credential\'s role', { 200: json(ref('Admin')), 404: error('no such admin') }, {
        parameters: [pathParam('id', 'admin id')],
        requestBody: body({ type: 'object', additionalProperties: false, required: ['role'], properties: { role: ref('Role') } }),
      }),
      delete: op('Revoke a credential', { 204: { description: 'Revoked' }, 404: error('no such admin'), 409: error('the last live admin') }, { parameters: [pathParam('id', 'admin id')] }),
    },
    '/admin/api/clients': {
      get: op('List clients', { 200: json(page(ref('Client'))) }, { parameters: [...pageParams, query('grant_type', 'only clients with this grant type'), query('resource_server', 'only the resource server client of this resource')] }),
      post: op('Register a client; a secret is in this answer only', { 201: json(ref('ClientWithSecret'), 'Created'), 409: error('client_id taken') }, {
        requestBody: body({ type: 'object', additionalProperties: false, properties: { client_id: str, ...clientFields } }),
      }),
    },
    '/admin/api/clients/{id}': {
      get: op('A client', { 200: json(ref('Client')), 404: error('no such client') }, { parameters: [pathParam('id', 'client_id')] }),
      patch: op('Update a client', { 200: json(ref('Client')), 404: error('no such client') }, {
        parameters: [pathParam('id', 'client_id')],
        requestBody: body({ type: 'object', additionalProperties: false, properties: clientFields }),
      }),
      delete: op('Delete a client', { 204: { description: 'Deleted' }, 404: error('no such client') }, { parameters: [pathParam('id', 'client_id')] }),
    },
    '/admin/api/clients/{id}/secret': {
      post: op('Rotate the client\'s secret; the new one is in this answer only', { 200: json(ref('ClientWithSecret')), 404: error('no such client') }, { parameters: [pathParam('id', 'client_id')] }),
    },
    '/admin/api/resources': {
      get: op('List resources', { 200: json(page(ref('Resource'))) }, { parameters: pageParams }),
      post: op('Register a resource', { 201: json(ref('Resource'), 'Created'), 409: error('identifier taken') }, {
        requestBody: body({ type: 'object', additionalProperties: false, required: ['identifier', 'name'], properties: { identifier: str, ...resourceFields } }),
      }),
    },
    '/admin/api/resources/{id}': {
      get: op('A resource', { 200: json(ref('Resource')), 404: error('no such resource') }, { parameters: [pathParam('id', 'identifier, URL-encoded')] }),
      patch: op('Update a resource', { 200: json(ref('Resource')), 404: error('no such resource') }, {
        parameters: [pathParam('id', 'identifier, URL-encoded')],
        requestBody: body({ type: 'object', additionalProperties: false, properties: resourceFields }),
      }),
      delete: op('Delete a resource', { 204: { description: 'Deleted' }, 404: error('no such resource') }, { parameters: [pathParam('id', 'identifier, URL-encoded')] }),
    },
    '/admin/api/issuers': {
      get: op('List trusted issuers', { 200: json(page(ref('Issuer'))) }, { parameters: pageParams }),
      post: op('Trust an issuer', { 201: json(ref('Issuer'), 'Created'), 409: error('issuer already trusted') }, {
        requestBody: body({ type: 'object', additionalProperties: false, required: ['issuer', 'audiences'], properties: { issuer: str, ...issuerFields } }),
      }),
    },
    '/admin/api/issuers/{id}': {
      get: op('A trusted issuer', { 200: json(ref('Issuer')), 404: error('no such issuer') }, { parameters: [pathParam('id', 'issuer, URL-encoded')] }),
      patch: op('Update a trusted issuer', { 200: json(ref('Issuer')), 404: error('no such issuer') }, {
        parameters: [pathParam('id', 'issuer, URL-encoded')],
        requestBody: body({ type: 'object', additionalProperties: false, properties: issuerFields }),
      }),
      delete: op('Stop trusting an issuer', { 204: { description: 'Deleted' }, 404: error('no such issuer') }, { parameters: [pathParam('id', 'issuer, URL-encoded')] }),
    },
    '/admin/api/whoami': {
      get: op('The calling credential', { 200: json({ type: 'object', additionalProperties: false, required: ['id', 'name', 'role', 'user'], properties: { id: str, name: str, role: { enum: ['admin', 'reviewer', 'auditor'] }, user: { oneOf: [{ type: 'null' }, { type: 'object', required: ['issuer', 'sub'], properties: { issuer: str, sub: str } }] } } }) }),
    },
    '/admin/api/keys': {
      get: op('Published signing keys', { 200: json(page(ref('SigningKey'))) }),
    },
    '/admin/api/keys/rotate': {
      post: op('Add a signing key, published now, signing after the overlap', { 201: json(ref('Rotation'), 'Created') }, {
        requestBody: body({ type: 'object', additionalProperties: false, properties: { overlap_seconds: { type: 'integer', minimum: 0 } } }, false),
      }),
    },
    '/admin/api/policies': {
      get: op('Policy versions, newest first', { 200: json(page(ref('PolicyVersionSummary'))) }),
      post: op('Publish a policy version', { 201: json(ref('PolicyVersion'), 'Created') }, {
        requestBody: body({ type: 'object', additionalProperties: false, required: ['document'], properties: { document: str, source: str } }),
      }),
    },
    '/admin/api/policies/{version}': {
      get: op('A policy version (or `current`)', { 200: json(ref('PolicyVersion')), 404: error('no such version') }, { parameters: [pathParam('version', 'a version number, or current')] }),
    },
    '/admin/api/policies/simulate': {
      post: op('Decide a hypothetical exchange under the policy in force or a draft; nothing is recorded', { 200: json(ref('Simulation')) }, {
        requestBody: body({ type: 'object', required: ['client_id', 'user', 'resource'], properties: { client_id: str, user: { type: 'object' }, resource: str, scope: str, authorization_details: { type: 'array' }, document: str, environment: { type: 'string', description: 'default: the deployment\'s (INTENTGATE_ENVIRONMENT)' } } }),
      }),
    },
    '/admin/api/policies/validate': {
      post: op('Check a draft policy document; an error names its line and column', {
        200: json({ type: 'object', required: ['valid'], properties: { valid: { type: 'boolean' }, error: { type: 'object', properties: { message: str, field: { type: ['string', 'null'] }, line: { type: ['integer', 'null'] }, column: { type: ['integer', 'null'] } } } } }),
      }, { requestBody: body({ type: 'object', additionalProperties: false, required: ['document'], properties: { document: str } }) }),
    },
    '/admin/api/policies/replay': {
      post: op('Re-decide recorded exchanges under a draft; lists what would change', { 200: json(ref('ReplayReport')) }, {
        requestBody: body({ type: 'object', additionalProperties: false, required: ['document'], properties: { document: str, since: str } }),
      }),
    },
    '/admin/api/revocations': {
      post: op('Revoke with cascade: exactly one of jti, task, client_id, user', { 201: json(ref('RevocationResult'), 'Created') }, {
        requestBody: body({ type: 'object', additionalProperties: false, properties: { jti: str, task: str, client_id: str, user: person, reason: str } }),
      }),
    },
    '/admin/api/tasks': {
      get: op('Tasks, newest first', { 200: json(page(ref('TaskSummary'))) }, {
        parameters: [...pageParams, ...['agent', 'user_iss', 'user_sub', 'status'].map((n) => query(n, `filter by ${n}`))],
      }),
    },
    '/admin/api/tasks/{task}': {
      get: op('A task: ceiling, counters, tokens and evidence', { 200: json(ref('Task')), 404: error('no such task') }, { parameters: [pathParam('task', 'task id')] }),
    },
    ...Object.fromEntries((['suspend', 'resume', 'revoke'] as const).map((change) => [`/admin/api/tasks/{task}/${change}`, {
      post: op(`${change[0]!.toUpperCase()}${change.slice(1)} a task (recorded with who did it)`, { 200: json(ref('Task')), 404: error('no such task') }, {
        parameters: [pathParam('task', 'task id')],
        requestBody: body({ type: 'object', additionalProperties: false, properties: change === 'resume' ? {} : { reason: str } }, false),
      }),
    }])),
    '/admin/api/reviews': {
      get: op('The review queue', { 200: json(page(ref('Review'))) }, { parameters: [query('status', 'pending, approved, denied or used')] }),
    },
    '/admin/api/reviews/{id}/approve': {
      post: op('Approve a review', { 200: json(ref('Review')), 404: error('no such review'), 409: error('already decided') }, {
        parameters: [pathParam('id', 'review id')],
        requestBody: body({ type: 'object', additionalProperties: false, properties: { comment: str } }, false),
      }),
    },
    '/admin/api/reviews/{id}/deny': {
      post: op('Deny a review', { 200: json(ref('Review')), 404: error('no such review'), 409: error('already decided') }, {
        parameters: [pathParam('id', 'review id')],
        requestBody: body({ type: 'object', additionalProperties: false, properties: { comment: str } }, false),
      }),
    },
    '/admin/api/ledger': {
      get: op('Ledger entries, newest first', { 200: json(page(ref('LedgerEntry'))) }, {
        parameters: [...pageParams, ...['kind', 'subject', 'client_id', 'task', 'jti', 'decision', 'since', 'until'].map((n) => query(n, `filter by ${n}`))],
      }),
    },
    '/admin/api/ledger/checkpoint': {
      post: op('Sign a checkpoint now', { 201: json(ref('Checkpoint'), 'Created'), 409: error('nothing new since the last checkpoint') }),
    },
    '/admin/api/ledger/stats': {
      get: op('Exchange decisions per hour, the ledger size and the latest checkpoint', {
        200: json({ type: 'object', required: ['since', 'buckets', 'entries', 'latest_checkpoint'], properties: {
          since: str, entries: { type: 'integer' }, latest_checkpoint: { type: ['object', 'null'] },
          buckets: { type: 'array', items: { type: 'object', required: ['start', 'granted', 'denied'], properties: { start: str, granted: { type: 'integer' }, denied: { type: 'integer' } } } },
        } }),
      }, { parameters: [query('hours', '1 to 168, default 24')] }),
    },
    '/admin/api/ledger/verify': {
      post: op('Check the whole ledger. With Accept: application/x-ndjson, progress lines {"progress":{"entries","total"}} come first and the report last as {"report":{...}}; 409 while another verification runs in this process', {
        200: {
          description: 'The report',
          content: {
            'application/json': { schema: ref('VerifyReport') },
            'application/x-ndjson': { schema: str },
          },
        },
      }, {
        requestBody: body({ type: 'object', additionalProperties: false, properties: { public_key: { type: 'string', description: 'an Ed25519 public key (JWK or SPKI PEM) to verify checkpoints with instead of the server\'s' } } }, false),
      }),
    },
    '/admin/api/ledger/export': {
      get: op('The ledger as NDJSON, oldest first: one LedgerEntry per line', {
        200: { description: 'NDJSON', content: { 'application/x-ndjson': { schema: str } } },
      }, { parameters: [query('since', '7d, 12h, 30m or an ISO 8601 date-time')] }),
    },
  },
  components: {
    securitySchemes: { adminBearer: { type: 'http', scheme: 'bearer', description: 'an admin credential' } },
    schemas: {
      Error: {
        type: 'object', required: ['error', 'error_description'],
        properties: { error: str, error_description: str, field: nullable(str) },
      },
      Role: { enum: ['admin', 'reviewer', 'auditor'] },
      Person: person,
      Jwks: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: { type: 'object' } } } },
      Admin: {
        type: 'object', additionalProperties: false, required: adminRequired,
        properties: adminProperties,
      },
      AdminWithToken: {
        type: 'object', additionalProperties: false, required: [...adminRequired, 'token'],
        properties: { ...adminProperties, token: str },
      },
      Client: {
        type: 'object', additionalProperties: false,
        required: ['client_id', 'client_name', 'grant_types', 'scope', 'token_endpoint_auth_method', 'jwks', 'resource_server', 'created_at', 'updated_at'],
        properties: { client_id: str, ...clientFields, created_at: dateTime, updated_at: dateTime },
      },
      ClientWithSecret: {
        type: 'object', additionalProperties: false,
        required: ['client_id', 'client_name', 'grant_types', 'scope', 'token_endpoint_auth_method', 'jwks', 'resource_server', 'created_at', 'updated_at'],
        properties: {
          client_id: str, ...clientFields, created_at: dateTime, updated_at: dateTime,
          client_secret: str, client_id_issued_at: { type: 'integer' }, client_secret_expires_at: { type: 'integer' },
        },
      },
      ResourceScope: {
        type: 'object', additionalProperties: false, required: ['name', 'sensitivity', 'operation'],
        properties: { name: str, sensitivity: { enum: ['public', 'internal', 'confidential', 'restricted'] }, operation: { enum: ['read', 'write'] } },
      },
      Resource: {
        type: 'object', additionalProperties: false, required: ['identifier', 'name', 'scopes', 'access_token_ttl', 'created_at', 'updated_at'],
        properties: { identifier: str, ...resourceFields, created_at: dateTime, updated_at: dateTime },
      },
      Issuer: {
        type: 'object', additionalProperties: false, required: ['issuer', 'jwks', 'jwks_uri', 'algorithms', 'audiences', 'typs', 'scope_claim', 'created_at', 'updated_at'],
        properties: { issuer: str, ...issuerFields, created_at: dateTime, updated_at: dateTime },
      },
      SigningKey: {
        type: 'object', additionalProperties: false, required: ['kid', 'alg', 'status', 'activates_at'],
        properties: { kid: str, alg: str, status: { enum: ['next', 'active', 'retired'] }, activates_at: dateTime },
      },
      Rotation: { type: 'object', additionalProperties: false, required: ['kid', 'activates_at'], properties: { kid: str, activates_at: dateTime } },
      PolicyVersionSummary: {
        type: 'object', additionalProperties: false, required: ['version', 'source', 'created_at', 'created_by'],
        properties: { version: { type: 'integer' }, source: str, created_at: dateTime, created_by: str },
      },
      PolicyVersion: {
        type: 'object', additionalProperties: false, required: ['version', 'source', 'created_at', 'created_by', 'document'],
        properties: { version: { type: 'integer' }, source: str, created_at: dateTime, created_by: str, document: str },
      },
      Simulation: {
        type: 'object', additionalProperties: false, required: ['decision', 'explanation'],
        properties: {
          decision: {
            type: 'object', additionalProperties: false, required: ['outcome', 'granted_scopes', 'ttl', 'matched_rules', 'reasons', 'signals', 'policy_version'],
            properties: {
              outcome: { enum: ['allow', 'deny', 'review', 'refused'] }, error: str, granted_scopes: strList, ttl: nullable({ type: 'integer' }), matched_rules: strList, reasons: strList,
              signals: { type: 'array', items: { type: 'object', required: ['rule', 'kind', 'outcome', 'per', 'evidence'] } }, policy_version: str,
            },
          },
          explanation: str,
          recorded: { type: 'object', required: ['seq', 'at', 'decision', 'agrees'], properties: { seq: { type: 'integer' }, at: str, agrees: { type: 'boolean' } } },
        },
      },
      ReplayReport: {
        type: 'object', additionalProperties: false, required: ['examined', 'skipped', 'unchanged', 'changed'],
        properties: {
          examined: { type: 'integer' }, skipped: { type: 'integer' }, unchanged: { type: 'integer' },
          changed: {
            type: 'array',
            items: {
              type: 'object', required: ['seq', 'at', 'jti', 'client_id', 'user', 'original', 'replayed'],
              properties: {
                seq: { type: 'integer' }, at: dateTime, jti: nullable(str), client_id: str, user: {},
                original: { type: 'object', required: ['decision', 'granted_scope', 'reasons'] },
                replayed: { type: 'object', required: ['decision', 'outcome', 'granted_scope', 'reasons', 'matched_rules'] },
              },
            },
          },
        },
      },
      RevocationResult: { type: 'object', additionalProperties: false, required: ['revoked', 'jtis'], properties: { revoked: { type: 'integer' }, jtis: strList } },
      TaskSummary: {
        type: 'object', required: ['task', 'agent', 'user', 'status'],
        properties: { task: str, agent: nullable(str), user: { type: 'object' }, intent: nullable(str), purpose: nullable(str), status: str, created_at: {}, expires_at: {} },
      },
      Task: {
        type: 'object', required: ['task', 'status', 'tokens'],
        properties: {
          task: str, status: str, agent: nullable(str), user: { type: 'object' }, intent: nullable(str), purpose: nullable(str),
          ceiling: { type: 'object' }, counters: { type: 'object' }, evidence: { type: 'array' },
          suspension: { type: 'object' },
          tokens: {
            type: 'array',
            items: {
              type: 'object', required: ['jti', 'client_id', 'audience', 'status', 'issued_at', 'expires_at'],
              properties: { jti: str, parent_jti: nullable(str), kind: str, client_id: str, audience: str, scope: {}, status: str, issued_at: dateTime, expires_at: dateTime },
            },
          },
        },
      },
      Review: {
        type: 'object', additionalProperties: false,
        required: ['id', 'kind', 'status', 'created_at', 'expires_at', 'client_id', 'user', 'task', 'context', 'decided_by', 'decided_at', 'comment'],
        properties: {
          id: str, kind: str, status: { enum: ['pending', 'approved', 'denied', 'used'] }, created_at: dateTime, expires_at: nullable(dateTime),
          client_id: str, user: person, task: nullable(str), context: { type: 'object' },
          decided_by: nullable(str), decided_at: nullable(dateTime), comment: nullable(str),
        },
      },
      LedgerEntry: {
        type: 'object', additionalProperties: false, required: ['seq', 'at', 'kind', 'actor', 'payload', 'leaf_hash', 'chain_hash'],
        properties: {
          seq: { type: 'integer', minimum: 1 }, at: dateTime, kind: str, actor: str, payload: { type: 'object' },
          leaf_hash: { type: 'string', pattern: '^[0-9a-f]{64}$' }, chain_hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        },
      },
      Checkpoint: {
        type: 'object', additionalProperties: false, required: ['tree_size', 'root_hash', 'timestamp', 'kid', 'jws'],
        properties: { tree_size: { type: 'integer' }, root_hash: str, timestamp: dateTime, kid: str, jws: str },
      },
      VerifyReport: {
        type: 'object', additionalProperties: false, required: ['ok', 'entries', 'head_hash', 'checkpoints', 'anchors'],
        properties: {
          ok: { type: 'boolean' }, entries: { type: 'integer' }, head_hash: str, checkpoints: { type: 'integer' }, anchors: { type: 'integer' },
          problem: { type: 'object', additionalProperties: false, required: ['seq', 'message'], properties: { seq: { type: 'integer' }, message: str } },
        },
      },
    },
  },
} as const;
