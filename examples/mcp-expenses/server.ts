import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { mcpAuthMetadataRouter } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { OAuthMetadata } from '@modelcontextprotocol/sdk/shared/auth.js';
import { z } from 'zod';
import { accessFrom, checkCall, createResourceVerifier, metadataUrl, nodeAuth, ResourceAuthError, type AuthorizationDetail, type AuthState, type CallRequirement } from '@intentgate/resource';
import { mcpTokenVerifier } from '@intentgate/resource/mcp';
import { ExpenseStore } from './store.ts';

export const SCOPES = ['expenses:read', 'expenses:submit', 'expenses:approve'];

export interface ExpensesServerOptions {
  /** intentgate's issuer URL. */
  issuer: string;
  /**
   * Called once the server listens, with its resource identifier (its MCP URL): registers it at intentgate
   * and returns this server's own client (with `resource_server`), for introspection and ledger events.
   */
  register: (resource: string) => Promise<{ clientId: string; clientSecret: string }>;
  host?: string;
  port?: number;
  store?: ExpenseStore;
}

export interface ExpensesServer {
  /** The MCP endpoint, which is also this resource server's identifier (the tokens' audience). */
  resource: string;
  url: string;
  store: ExpenseStore;
  close(): Promise<void>;
}

type ToolResult = { content: Array<{ type: 'text'; text: string }>; isError?: boolean };
const text = (value: unknown, isError = false): ToolResult => ({ content: [{ type: 'text', text: typeof value === 'string' ? value : JSON.stringify(value) }], ...(isError ? { isError } : {}) });

/**
 * An MCP server exposing expense tools, protected per the MCP authorization spec: RFC 9728 metadata naming
 * intentgate, audience-bound tokens, and every tool call checked against the token's authorization_details.
 * It never passes the agent's token on to anything else (no token passthrough).
 */
export async function startExpensesServer(options: ExpensesServerOptions): Promise<ExpensesServer> {
  const host = options.host ?? '127.0.0.1';
  const store = options.store ?? new ExpenseStore();
  const httpServer = http.createServer();
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = httpServer.address() as AddressInfo;
  const base = `http://${host}:${port}`;
  const resource = `${base}/mcp`;
  const close = () => new Promise<void>((r) => { httpServer.closeAllConnections(); httpServer.close(() => r()); });
  try {
    httpServer.on('request', await expensesApp({ issuer: options.issuer, base, resource, store, credentials: await options.register(resource) }));
  } catch (err) {
    await close();
    throw err;
  }
  return { resource, url: base, store, close };
}

/** What a tool call will do: refused, or an effect that runs once the ledger has recorded it. */
type Outcome = { commit: () => unknown; object?: { type: string; id: string; created?: boolean } } | { refused: string };

async function expensesApp({ issuer, base, resource, store, credentials }: {
  issuer: string; base: string; resource: string; store: ExpenseStore; credentials: { clientId: string; clientSecret: string };
}): Promise<express.Express> {
  // Revocation must bite at once (a suspended task's tokens), so every call is introspected.
  const verifier = createResourceVerifier({ issuer, resource, credentials, introspection: { cacheSeconds: 0 }, resourceMetadataUrl: metadataUrl(resource) });
  const discovery = await fetch(`${issuer}/.well-known/oauth-authorization-server`);
  if (!discovery.ok) throw new Error(`intentgate discovery failed: ${discovery.status}`);
  // The SDK's type expects an interactive authorization server; intentgate has none (agents do not log in).
  const oauthMetadata = (await discovery.json()) as OAuthMetadata;

  /**
   * Runs a tool only when the token covers exactly this call. Its effect happens only after the ledger has
   * recorded it (as intentgate returns no token before its record commits): intentgate's history, which
   * separation of duties reads, never misses a call that took effect.
   */
  const guarded = async (
    auth: AuthInfo | undefined,
    requirement: CallRequirement & { action: string },
    run: (access: AuthState, granted: AuthorizationDetail) => Outcome,
  ): Promise<ToolResult> => {
    // Set by whichever middleware authenticated the request (the SDK's requireBearerAuth or nodeAuth).
    const access = accessFrom(auth);
    let outcome: Outcome;
    try {
      // The detail that covers this call: what the policy decided on.
      outcome = run(access, checkCall(access, requirement)!);
    } catch (err) {
      if (!(err instanceof ResourceAuthError)) throw err;
      outcome = { refused: `${err.error}: ${err.description}` };
    }
    if ('refused' in outcome) {
      await access.report({ outcome: 'denied', action: requirement.action }).catch(() => undefined);
      return text(`refused: ${outcome.refused}`, true);
    }
    try {
      await access.report({ outcome: 'success', action: requirement.action, ...(outcome.object ? { object: outcome.object } : {}) });
    } catch {
      return text('not done: the call could not be recorded in the ledger; retry later', true);
    }
    return text(outcome.commit());
  };

  const mcpServer = () => {
    const server = new McpServer({ name: 'expenses', version: '1.0.0' });
    server.registerTool('list_expenses', {
      // An approver's view: every report, whoever submitted it.
      description: 'List expense reports',
      inputSchema: {},
    }, async (_args, extra) => guarded(extra.authInfo, { scope: 'expenses:read', action: 'list', objectType: 'Expense' }, () => ({ commit: () => store.list() })));
    server.registerTool('submit_expense', {
      description: 'Submit an expense report for the user',
      inputSchema: { amount: z.number().positive().max(1_000_000), currency: z.string().regex(/^[A-Z]{3}$/), description: z.string().min(1).max(500) },
    }, async (args, extra) => guarded(extra.authInfo, { scope: 'expenses:submit', action: 'submit', objectType: 'Expense' }, (access) => {
      const id = store.newId();
      // Reported as created, so intentgate's history knows who submitted it (separation of duties).
      return { object: { type: 'Expense', id, created: true }, commit: () => store.add({ id, owner: access.sub, amount: args.amount, currency: args.currency, description: args.description }) };
    }));
    server.registerTool('approve_expense', {
      description: 'Approve an expense report',
      inputSchema: { id: z.string().min(1).max(256), amount: z.number().positive() },
    }, async (args, extra) => guarded(extra.authInfo, { scope: 'expenses:approve', action: 'approve', objectType: 'Expense', objectId: args.id }, (access, granted) => {
      const e = store.get(args.id);
      if (!e) return { refused: `no expense ${args.id}` };
      if (e.status !== 'submitted') return { refused: `${e.id} is already ${e.status}` };
      // intentgate's policy refuses this already; the application holds the line too (defence in depth).
      if (e.owner === access.sub) return { refused: `${e.id} was submitted by the same user` };
      // The policy decided on the amount in the token's details: it must be this expense's real amount.
      if (granted.object?.amount !== e.amount || args.amount !== e.amount) return { refused: `the token was granted for another amount than ${e.amount}` };
      return { object: { type: 'Expense', id: e.id }, commit: () => store.approve(e.id, access.sub) };
    }));
    return server;
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(mcpAuthMetadataRouter({ oauthMetadata, resourceServerUrl: new URL(resource), scopesSupported: SCOPES, resourceName: 'Expenses (MCP)' }));
  const bearer = requireBearerAuth({ verifier: mcpTokenVerifier(verifier), expectedResource: new URL(resource), resourceMetadataUrl: metadataUrl(resource) });
  const dpop = nodeAuth(verifier, {}, { baseUrl: base });
  // The SDK's middleware speaks Bearer only; DPoP-bound calls need a proof checked, which intentgate's does.
  const authenticate = (req: Request, res: Response, next: NextFunction) =>
    (/^dpop\s/i.test(req.headers.authorization ?? '') ? dpop : bearer)(req, res, next);
  app.post('/mcp', authenticate, express.json({ limit: '64kb' }), async (req: Request, res: Response) => {
    // Stateless Streamable HTTP: one server and transport per request, nothing shared between callers.
    const server = mcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { void transport.close(); void server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app.all('/mcp', (_req, res) => { res.status(405).set('Allow', 'POST').json({ error: 'method_not_allowed', error_description: 'this stateless MCP server takes POST only' }); });
  // Malformed or oversized JSON is the caller's mistake: a JSON-RPC parse error, never a stack trace.
  app.use((err: { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    res.status(status).json({ jsonrpc: '2.0', id: null, error: { code: status === 500 ? -32603 : -32700, message: status === 500 ? 'internal error' : `request body refused (${err.type ?? 'bad request'})` } });
  });
  return app;
}
