// `npm run example:mcp`: the expenses MCP server on its own, protected by the intentgate you run beside it
// (`npm start`), so you can point your own MCP client (or agent) at it. It registers itself at intentgate
// (its resource, with the expenses scopes, and its resource-server client), idempotently, through the same
// admin connection the CLI uses: no admin token to pass on the embedded database.
import { loadConfig } from '../../src/config/index.ts';
import { AdminApiError, type AdminApi } from '../../src/cli/admin_api.ts';
import { connect } from '../../src/cli/connect.ts';
import { readServerRecord } from '../../src/ops/server_record.ts';
import { startExpensesServer } from './server.ts';

const SCOPES = [
  { name: 'expenses:read', sensitivity: 'internal', operation: 'read' },
  { name: 'expenses:submit', sensitivity: 'confidential', operation: 'write' },
  { name: 'expenses:approve', sensitivity: 'confidential', operation: 'write' },
];
const CLIENT_ID = 'mcp-expenses';

async function ensure(api: AdminApi, create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!(err instanceof AdminApiError && err.status === 409)) throw err;
  }
}

async function register(api: AdminApi, resource: string): Promise<{ clientId: string; clientSecret: string }> {
  await ensure(api, () => api.call('POST', '/admin/api/resources', { identifier: resource, name: 'Expenses (MCP example)', access_token_ttl: 300, scopes: SCOPES }));
  const existing = await api.call<{ resource_server: string | null }>('GET', `/admin/api/clients/${CLIENT_ID}`).catch((err: unknown) => {
    if (err instanceof AdminApiError && err.status === 404) return undefined;
    throw err;
  });
  if (!existing) {
    const made = await api.call<{ client_secret: string }>('POST', '/admin/api/clients', { client_id: CLIENT_ID, resource_server: resource });
    return { clientId: CLIENT_ID, clientSecret: made.client_secret };
  }
  if (existing.resource_server !== resource) await api.call('PATCH', `/admin/api/clients/${CLIENT_ID}`, { resource_server: resource });
  // Its secret was shown once, to an earlier run: this run takes a new one.
  const rotated = await api.call<{ client_secret: string }>('POST', `/admin/api/clients/${CLIENT_ID}/secret`);
  return { clientId: CLIENT_ID, clientSecret: rotated.client_secret };
}

async function main(): Promise<void> {
  const config = loadConfig('development');
  // The running development server's issuer (whatever its port), else ISSUER / http://localhost:$PORT.
  const issuer = (process.env.ISSUER ? undefined : readServerRecord(config.dataDir)?.issuer) ?? config.issuer;
  const port = Number(process.env.MCP_PORT ?? 3100);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`MCP_PORT must be a port number, got ${process.env.MCP_PORT}`);
  const conn = await connect(config);
  let mcp;
  try {
    mcp = await startExpensesServer({ issuer, port, host: process.env.MCP_HOST ?? '127.0.0.1', register: (resource) => register(conn.api, resource) });
  } finally {
    await conn.close();
  }
  process.stderr.write([
    '',
    `  expenses MCP server: ${mcp.resource}`,
    `  protected by intentgate at ${issuer}; resource ${mcp.resource}, scopes ${SCOPES.map((s) => s.name).join(' ')}`,
    `  metadata (RFC 9728): ${mcp.url}/.well-known/oauth-protected-resource/mcp`,
    '  tools: list_expenses, submit_expense, approve_expense; tokens come from a token exchange (see the README)',
    '',
  ].join('\n'));
  const stop = () => { void mcp.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`example:mcp: ${err instanceof AdminApiError || (err as { code?: string }).code ? (err as Error).message : (err as Error).stack}\n`);
  process.exit(1);
});
