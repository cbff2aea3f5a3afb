import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { devIssuerId, mintDevUserToken } from '../../src/keys/dev_issuer.ts';
import { freePort } from '../../src/ops/free_port.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { startExpensesServer, type ExpensesServer } from './server.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** Restricted data the summarising task must not reach; only its resource registration is needed. */
export const HR = 'https://hr.example';

export interface DemoWorld {
  issuer: string;
  intentgate: RunningServer;
  config: Config;
  mcp: ExpensesServer;
  /** Agents' client credentials by client_id. */
  creds: Record<string, { clientId: string; clientSecret: string }>;
  /** A reviewer's admin credential (a person, not the bootstrap admin). */
  reviewerToken: string;
  /** A user's broad token from the development issuer, as an identity provider would issue it. */
  userToken(sub: string, claims?: Record<string, unknown>, ttlSeconds?: number): Promise<string>;
  admin(method: string, pathname: string, body?: unknown, token?: string): Promise<Response>;
  close(): Promise<void>;
}

/**
 * intentgate on an embedded database with the demo policy, the expenses MCP server registered as a
 * resource, two agents (`assistant`, which may delegate to `summarizer`) and a reviewer.
 */
export async function startDemoWorld(options: { logLevel?: string } = {}): Promise<DemoWorld> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'intentgate-demo-'));
  const port = await freePort();
  const adminToken = randomBytes(24).toString('base64url');
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}`,
    ADMIN_TOKEN: adminToken,
    INTENTGATE_KEK: randomBytes(32).toString('base64url'),
    INTENTGATE_CONFIG: path.resolve(HERE, '../../config/default.yaml'),
    LOG_LEVEL: options.logLevel ?? 'silent',
  };
  const config = loadConfig('development', env, { policy: { file: path.join(HERE, 'policy.yaml') } });
  const intentgate = await startServer(config);
  const issuer = config.issuer;
  const admin = (method: string, pathname: string, body?: unknown, token = adminToken) => fetch(`${issuer}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const must = async (res: Promise<Response>): Promise<Record<string, unknown>> => {
    const r = await res;
    if (r.status !== 201) throw new Error(`demo setup: ${r.status} ${await r.text()}`);
    return await r.json() as Record<string, unknown>;
  };
  let mcp: ExpensesServer | undefined;
  try {
    await must(admin('POST', '/admin/api/resources', { identifier: HR, name: 'HR records', scopes: [{ name: 'hr:read', sensitivity: 'restricted', operation: 'read' }] }));
    const creds: DemoWorld['creds'] = {};
    for (const [clientId, scope] of [['assistant', 'expenses:read expenses:submit expenses:approve hr:read'], ['summarizer', 'expenses:read hr:read']] as const) {
      const c = await must(admin('POST', '/admin/api/clients', { client_id: clientId, grant_types: [TOKEN_EXCHANGE], scope }));
      creds[clientId] = { clientId, clientSecret: c.client_secret as string };
    }
    // The MCP server's identifier is its URL, known once it listens: it registers itself then.
    mcp = await startExpensesServer({
      issuer,
      register: async (resource) => {
        await must(admin('POST', '/admin/api/resources', {
          identifier: resource, name: 'Expenses (MCP)', access_token_ttl: 300,
          scopes: [
            { name: 'expenses:read', sensitivity: 'internal', operation: 'read' },
            { name: 'expenses:submit', sensitivity: 'confidential', operation: 'write' },
            { name: 'expenses:approve', sensitivity: 'confidential', operation: 'write' },
          ],
        }));
        const rs = await must(admin('POST', '/admin/api/clients', { client_id: 'mcp-expenses', resource_server: resource }));
        return { clientId: 'mcp-expenses', clientSecret: rs.client_secret as string };
      },
    });
    // Carol reviews as herself: a reviewer is bound to the person they are, and never decides her own requests.
    const reviewer = await must(admin('POST', '/admin/api/admins', { name: 'carol', role: 'reviewer', user: { issuer: devIssuerId(config), sub: 'carol' } }));
    const server = mcp;
    return {
      issuer,
      intentgate,
      config,
      mcp: server,
      creds,
      reviewerToken: reviewer.token as string,
      userToken: (sub, claims = {}, ttl = 3600) => mintDevUserToken(config, sub, 'expenses:read expenses:submit expenses:approve hr:read', ttl, claims),
      admin,
      async close() {
        await server.close();
        await intentgate.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await mcp?.close();
    await intentgate.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}
