// What the benchmark runs against: a fresh PostgreSQL database, intentgate started in-process on it,
// a trusted identity provider, resources and clients registered through the admin API, and real
// ES256 user tokens for many distinct users.
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from '../src/ops/free_port.ts';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import pg from 'pg';
import { loadConfig } from '../src/config/index.ts';
import { startServer, type RunningServer } from '../src/server.ts';

export const EXPENSES = 'https://expenses.example';
export const HR = 'https://hr.example';
export const REPORTS = 'https://reports.example';
export const IDP = 'https://idp.bench.example';
export const IDP_AUDIENCE = 'intentgate';
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const ROOT = path.resolve(import.meta.dirname, '..');
export const POLICY_FILE = path.join(import.meta.dirname, 'policy.yaml');

/** The bench policy plus the README's separation-of-duties rules, which read history on every approval. */
export function historyPolicy(): string {
  return `${readFileSync(POLICY_FILE, 'utf8')}
  - id: no-approving-your-own-expense
    effect: deny
    resource: https://expenses.example
    reason: separation_of_duties
    when: { action: approve, object_type: Expense, history: { user_object_actions: { contains: submit } } }
  - id: at-most-two-submits-per-task
    effect: deny
    reason: task_submit_limit
    when: { action: submit, history: { task_action_count: { gte: 2 } } }
`;
}

// ---------------------------------------------------------------------------------------------------
// Database

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function onServer(serverUrl: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: serverUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Creates `ig_bench_<random>` on the server `serverUrl` points at. */
export async function createDatabase(serverUrl: string): Promise<BenchDatabase> {
  const name = `ig_bench_${randomBytes(6).toString('hex')}`;
  await onServer(serverUrl, `CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return;
      await onServer(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      dropped = true;
    },
  };
}

export async function serverVersion(serverUrl: string): Promise<string> {
  const c = new pg.Client({ connectionString: serverUrl });
  await c.connect();
  try {
    const r = await c.query<{ server_version: string }>('SHOW server_version');
    return r.rows[0]?.server_version ?? 'unknown';
  } finally {
    await c.end();
  }
}

// ---------------------------------------------------------------------------------------------------
// Server

/** A running intentgate as the benchmark drives it: over HTTP only. */
export interface AdminApi {
  url: string;
  admin(method: string, pathname: string, body?: unknown): Promise<Response>;
}

export interface BenchServer extends AdminApi {
  adminToken: string;
  running: RunningServer;
  close(): Promise<void>;
}

export function adminClient(url: string, adminToken: string): AdminApi {
  return {
    url,
    admin(method, pathname, body) {
      return fetch(`${url}${pathname}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
  };
}

/** intentgate on `databaseUrl`, or on a fresh embedded PGlite database when it is undefined. */
export async function startBenchServer(databaseUrl: string | undefined): Promise<BenchServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'intentgate-bench-'));
  const port = await freePort();
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  const env: Record<string, string> = {
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    DATA_DIR: dataDir,
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}`,
    ADMIN_TOKEN: adminToken,
    INTENTGATE_KEK: randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'warn',
    // The shipped configuration file, found wherever the benchmark is started from.
    INTENTGATE_CONFIG: path.join(ROOT, 'config/default.yaml'),
  };
  const config = loadConfig('development', env, {
    rate_limits: { token: { burst: 1_000_000, per_second: 1_000_000 }, token_per_address: { burst: 1_000_000, per_second: 1_000_000 } },
    policy: { file: POLICY_FILE },
    development_issuer: false,
  });
  let running: RunningServer;
  try {
    running = await startServer(config);
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const url = running.url.replace(/\/$/, '');
  return {
    ...adminClient(url, adminToken),
    adminToken,
    running,
    async close() {
      try {
        await running.close();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Registry: issuer, resources, clients

export interface Registered {
  idpKey: CryptoKey;
  /** [client_id, client_secret] of the token-exchange agent. */
  agent: [string, string];
  /** [client_id, client_secret] of the client_credentials client. */
  batch: [string, string];
  /** [client_id, client_secret] of the expenses resource server, which introspects. */
  resourceServer: [string, string];
}

export async function register(s: AdminApi): Promise<Registered> {
  const must = async (res: Promise<Response>, what: string) => {
    const r = await res;
    if (r.status !== 201) throw new Error(`setup ${what}: ${r.status} ${await r.text()}`);
    return r.json() as Promise<Record<string, unknown>>;
  };
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  await must(s.admin('POST', '/admin/api/issuers', {
    issuer: IDP,
    jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'ES256' }] },
    audiences: [IDP_AUDIENCE],
    algorithms: ['ES256'],
  }), 'issuer');
  const resources = [
    [EXPENSES, 'Expenses', [['expenses:read', 'internal', 'read'], ['expenses:submit', 'confidential', 'write'], ['expenses:approve', 'confidential', 'write']]],
    [HR, 'HR documents', [['hr:read', 'restricted', 'read']]],
    [REPORTS, 'Reports', [['reports:read', 'internal', 'read']]],
  ] as const;
  for (const [identifier, name, scopes] of resources) {
    await must(s.admin('POST', '/admin/api/resources', {
      identifier, name, scopes: scopes.map(([scope, sensitivity, operation]) => ({ name: scope, sensitivity, operation })),
    }), `resource ${identifier}`);
  }
  const secretOf = async (client: Record<string, unknown>): Promise<[string, string]> => {
    const created = await must(s.admin('POST', '/admin/api/clients', client), `client ${String(client.client_id)}`);
    return [client.client_id as string, created.client_secret as string];
  };
  const agent = await secretOf({
    client_id: 'expense-agent', client_name: 'Expense assistant', grant_types: [TOKEN_EXCHANGE],
    scope: 'expenses:read expenses:submit expenses:approve hr:read reports:read',
  });
  const batch = await secretOf({ client_id: 'nightly-batch', client_name: 'Nightly export', grant_types: ['client_credentials'], scope: 'expenses:read' });
  const resourceServer = await secretOf({ client_id: 'expenses-api', client_name: 'Expenses API', grant_types: ['client_credentials'], scope: '', resource_server: EXPENSES });
  return { idpKey: privateKey, agent, batch, resourceServer };
}

export function basicAuth([id, secret]: [string, string]): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

// ---------------------------------------------------------------------------------------------------
// Request bodies

export function clientCredentialsBody(): string {
  return new URLSearchParams({ grant_type: 'client_credentials', resource: EXPENSES, scope: 'expenses:read' }).toString();
}

const DEPARTMENTS = ['finance', 'engineering', 'sales', 'operations', 'management', 'marketing'];

/** One user token per user: ES256, typ JWT, from the trusted issuer, valid for an hour. */
export async function userTokens(key: CryptoKey, users: number): Promise<Array<{ sub: string; token: string }>> {
  const now = Math.floor(Date.now() / 1000);
  const out: Array<{ sub: string; token: string }> = [];
  for (let i = 0; i < users; i++) {
    const sub = `user-${String(i).padStart(5, '0')}`;
    const department = DEPARTMENTS[i % DEPARTMENTS.length]!;
    const token = await new SignJWT({
      scope: 'expenses:read expenses:submit expenses:approve reports:read',
      email: `${sub}@corp.example`,
      name: `Bench User ${i}`,
      department,
      groups: i % 3 === 0 ? ['managers', `${department}-team`] : ['managers'],
      account_status: 'active',
      employment_type: 'employee',
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'idp-1', typ: 'JWT' })
      .setIssuer(IDP)
      .setSubject(sub)
      .setAudience(IDP_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .setJti(randomBytes(12).toString('base64url'))
      .sign(key);
    out.push({ sub, token });
  }
  return out;
}

/** The benchmarked exchange: approve one expense below 1000, for the given user's token. */
export function exchangeBody(subjectToken: string): string {
  const id = `exp_${randomInt(100_000, 1_000_000)}`;
  const amount = randomInt(10, 1000);
  return new URLSearchParams({
    grant_type: TOKEN_EXCHANGE,
    subject_token: subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    resource: EXPENSES,
    scope: 'expenses:approve',
    intent: `Approve expense report ${id} (${amount} EUR) that the user reviewed in the chat`,
    authorization_details: JSON.stringify([{ type: 'tool_call', action: 'approve', object: { type: 'Expense', id, amount } }]),
  }).toString();
}

/**
 * `count` DPoP proofs (RFC 9449) for POST `tokenUrl`, each with its own jti, made now by one ES256 key:
 * each is accepted once, so a run needs at least as many as it sends requests.
 */
export async function dpopProofs(tokenUrl: string, count: number): Promise<string[]> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  const iat = Math.floor(Date.now() / 1000);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    out.push(await new SignJWT({ htm: 'POST', htu: tokenUrl, jti: randomBytes(16).toString('base64url'), iat })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(privateKey));
  }
  return out;
}
