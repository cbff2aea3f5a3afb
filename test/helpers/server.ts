import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { inject } from 'vitest';
import { freePort } from '../../src/ops/free_port.ts';
import os from 'node:os';
import path from 'node:path';
import { adminQuery } from './pg_admin.ts';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { startServer, type RunningServer } from '../../src/server.ts';

export { freePort };

/** True when the suite runs against PostgreSQL (DATABASE_URL set), false on embedded PGlite. */
export const onPostgres = Boolean(process.env.DATABASE_URL);


/**
 * A database of its own for one test file: a fresh PostgreSQL database, or a fresh PGlite directory. By
 * default a copy of the template the global setup migrated (test/helpers/global_setup.ts); `empty` gives one
 * with no migrations applied, for tests of migrating itself.
 */
export async function freshDatabase(options: { empty?: boolean } = {}): Promise<{ env: Record<string, string>; name?: string; drop(): Promise<void> }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'intentgate-test-'));
  const template = options.empty ? undefined : inject('migratedTemplate');
  if (!onPostgres) {
    if (template) cpSync(template, dataDir, { recursive: true });
    return { env: { DATA_DIR: dataDir }, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const name = `ig_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(template ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`);
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  return {
    env: { DATA_DIR: dataDir, DATABASE_URL: url.toString() },
    name,
    drop: async () => {
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export { adminQuery };

export interface TestServer {
  url: string;
  issuer: string;
  adminToken: string;
  env: Record<string, string>;
  config: Config;
  server: RunningServer;
  /** Stops and starts again on the same database, port and keys. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  admin(method: string, pathname: string, body?: unknown, token?: string): Promise<Response>;
}

export type Overrides = Parameters<typeof loadConfig>[2];

export async function startTestServer(overrides: Overrides = {}, extraEnv: Record<string, string> = {}, options: { databaseUrl?: (url: string) => string } = {}): Promise<TestServer> {
  const db = await freshDatabase();
  // e.g. the same database reached through a test's own TCP proxy
  if (options.databaseUrl && db.env.DATABASE_URL) db.env.DATABASE_URL = options.databaseUrl(db.env.DATABASE_URL);
  const port = await freePort();
  const adminToken = `test-admin-${randomBytes(16).toString('hex')}`;
  const env: Record<string, string> = {
    ...db.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}`,
    ADMIN_TOKEN: adminToken,
    INTENTGATE_KEK: randomBytes(32).toString('base64url'),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...extraEnv,
  };
  // Admission control sheds by wall-clock waiting time, and rate limits count requests per wall-clock second:
  // a file making many requests would meet them on a fast machine and not on a busy one. Tests must not depend
  // on either, so both are off unless a test sets its own (test/operations/admission.test.ts,
  // test/foundation/admin_auth.test.ts, test/foundation/token_rate_limit.test.ts).
  const unlimited = { burst: 1_000_000, per_second: 1_000_000 };
  const config = loadConfig('development', env, {
    ...overrides,
    server: { max_concurrency: 100_000, ...overrides.server },
    rate_limits: { token: unlimited, token_per_address: unlimited, admin: unlimited, ...overrides.rate_limits },
  });
  const t: TestServer = {
    url: `http://127.0.0.1:${port}`,
    issuer: env.ISSUER!,
    adminToken,
    env,
    config,
    server: await startServer(config),
    async restart() {
      await t.server.close();
      t.server = await startServer(config);
    },
    async stop() {
      await t.server.close();
      await db.drop();
    },
    admin(method, pathname, body, token = adminToken) {
      return fetch(`${t.url}${pathname}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
    },
  };
  return t;
}

/** RFC 6749 §2.3.1 HTTP Basic client authentication: id and secret form-encoded, then base64. */
export function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** POSTs a form to /token, optionally with HTTP Basic client authentication. */
export function tokenRequest(url: string, params: Record<string, string | string[]>, basic?: [string, string], extraHeaders: Record<string, string> = {}): Promise<Response> {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const one of [v].flat()) form.append(k, one);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...extraHeaders };
  if (basic) headers.authorization = basicAuth(...basic);
  return fetch(`${url}/token`, { method: 'POST', headers, body: form });
}

export const EXPENSES = 'https://expenses.example';

/** Registers the expenses resource and a client_credentials client allowed its read scope. */
export async function seedExpenses(t: TestServer, clientId = 'svc'): Promise<{ clientId: string; secret: string }> {
  const r = await t.admin('POST', '/admin/api/resources', {
    identifier: EXPENSES,
    name: 'Expenses',
    scopes: [
      { name: 'expenses:read', sensitivity: 'internal', operation: 'read' },
      { name: 'expenses:write', sensitivity: 'confidential', operation: 'write' },
    ],
  });
  if (r.status !== 201 && r.status !== 409) throw new Error(`seed resource: ${r.status} ${await r.text()}`);
  const c = await t.admin('POST', '/admin/api/clients', { client_id: clientId, scope: 'expenses:read' });
  if (c.status !== 201) throw new Error(`seed client: ${c.status} ${await c.text()}`);
  const body = (await c.json()) as { client_secret: string };
  return { clientId, secret: body.client_secret };
}

/** A server with the expenses resource and a client_credentials client `svc`; its credentials. */
export async function startSeededServer(): Promise<{ t: TestServer; creds: [string, string] }> {
  const t = await startTestServer();
  const { clientId, secret } = await seedExpenses(t);
  return { t, creds: [clientId, secret] };
}

export interface Served {
  url: string;
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 at an ephemeral port: a resource server, or a stand-in peer, for a test. */
export async function serve(handler: http.RequestListener, options: http.ServerOptions = {}): Promise<Served> {
  const server = http.createServer(options, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((err) => (err ? reject(err) : resolve()));
    }),
  };
}

/** A `reviewer` admin credential bound to the person (issuer, sub), made by the bootstrap admin; its token. */
export async function reviewerToken(t: TestServer, issuer: string, sub: string): Promise<string> {
  const r = await t.admin('POST', '/admin/api/admins', { name: `reviewer ${sub}`, role: 'reviewer', user: { issuer, sub } });
  if (r.status !== 201) throw new Error(`reviewer: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { token: string }).token;
}
