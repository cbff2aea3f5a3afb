import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import path from 'node:path';
import { basicAuth, startTestServer, tokenRequest, type Overrides, type TestServer } from './server.ts';

export const EXPENSES = 'https://expenses.example';
export const HR = 'https://hr.example';
export const REPORTS = 'https://reports.example';
export const IDP = 'https://idp.test';
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

export interface World {
  t: TestServer;
  idpKey: CryptoKey;
  /** Client credentials by client_id. */
  creds: Record<string, [string, string]>;
  /** A user token from the test identity provider. */
  userToken(claims?: JWTPayload & { sub?: string }, header?: Record<string, unknown>, key?: CryptoKey): Promise<string>;
  /** POST /token with the token-exchange grant as `clientId` (and extra headers, e.g. DPoP). */
  exchange(clientId: string, params: Record<string, string | string[]>, headers?: Record<string, string>): Promise<Response>;
}

/**
 * A running intentgate with the expenses, HR and reports resources, a trusted test identity provider,
 * agents (`agent`, `sub-agent`, `other-agent`), a client_credentials-only client (`batch`) and one
 * resource-server client per resource (`expenses-rs`, `hr-rs`), under test/fixtures/policy/exchange.yaml.
 */
export async function startWorld(overrides: Overrides = {}): Promise<World> {
  const t = await startTestServer({ policy: { file: path.resolve('test/fixtures/policy/exchange.yaml') }, development_issuer: false, ...overrides });
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const must = async (res: Promise<Response>) => {
    const r = await res;
    if (r.status !== 201) throw new Error(`setup: ${r.status} ${await r.text()}`);
    return r.json() as Promise<Record<string, unknown>>;
  };
  await must(t.admin('POST', '/admin/api/issuers', {
    issuer: IDP, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'ES256' }] }, audiences: ['intentgate'], algorithms: ['ES256'],
  }));
  for (const [identifier, scopes] of [
    [EXPENSES, [['expenses:read', 'internal', 'read'], ['expenses:submit', 'confidential', 'write'], ['expenses:approve', 'confidential', 'write']]],
    [HR, [['hr:read', 'restricted', 'read']]],
    [REPORTS, [['reports:read', 'internal', 'read']]],
  ] as const) {
    await must(t.admin('POST', '/admin/api/resources', { identifier, name: identifier, scopes: scopes.map(([name, sensitivity, operation]) => ({ name, sensitivity, operation })) }));
  }
  const creds: Record<string, [string, string]> = {};
  const clients: Array<Record<string, unknown>> = [
    { client_id: 'agent', grant_types: [TOKEN_EXCHANGE], scope: 'expenses:read expenses:submit expenses:approve hr:read reports:read' },
    { client_id: 'sub-agent', grant_types: [TOKEN_EXCHANGE], scope: 'expenses:read expenses:submit' },
    { client_id: 'other-agent', grant_types: [TOKEN_EXCHANGE], scope: 'expenses:read' },
    { client_id: 'batch', grant_types: ['client_credentials'], scope: 'expenses:read' },
    { client_id: 'expenses-rs', resource_server: EXPENSES },
    { client_id: 'hr-rs', resource_server: HR },
  ];
  for (const c of clients) {
    const created = await must(t.admin('POST', '/admin/api/clients', c));
    creds[c.client_id as string] = [c.client_id as string, created.client_secret as string];
  }
  const world: World = {
    t,
    idpKey: privateKey,
    creds,
    async userToken(claims = {}, header = {}, key = privateKey) {
      const now = Math.floor(Date.now() / 1000);
      // Any claim can be overridden, or dropped by setting it to undefined.
      return new SignJWT({
        iss: IDP, sub: 'alice', aud: 'intentgate', iat: now, exp: now + 3600, jti: randomBytes(8).toString('hex'),
        scope: 'expenses:read expenses:submit expenses:approve hr:read reports:read', groups: ['managers'], ...claims,
      })
        .setProtectedHeader({ alg: 'ES256', kid: 'idp-1', typ: 'JWT', ...header } as { alg: string })
        .sign(key);
    },
    exchange(clientId, params, headers) {
      return tokenRequest(t.url, { grant_type: TOKEN_EXCHANGE, ...params }, creds[clientId], headers);
    },
  };
  return world;
}

/** The usual exchange parameters for a user token, overridable. */
export function exchangeParams(subjectToken: string, extra: Record<string, string | string[]> = {}): Record<string, string | string[]> {
  return {
    subject_token: subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    resource: EXPENSES,
    scope: 'expenses:read',
    intent: 'List the open expense reports for the weekly summary',
    ...extra,
  };
}

export function details(action: string, object: Record<string, unknown>, purpose?: string): string {
  return JSON.stringify([{ type: 'tool_call', action, object, ...(purpose ? { purpose } : {}) }]);
}

/** POST /ledger/events as a resource-server client of the world (`expenses-rs`, `hr-rs`). */
export function reportEvent(w: World, clientId: string, body: unknown): Promise<Response> {
  return fetch(`${w.t.url}/ledger/events`, {
    method: 'POST',
    headers: { authorization: basicAuth(...w.creds[clientId]!), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}
