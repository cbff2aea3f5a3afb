import { waitForApproval, type WaitOptions } from './approval.ts';
import { AgentKey, DpopHandles } from './dpop_key.ts';
import type { ApprovalPending } from './errors.ts';
import { exchangeToken } from './exchange.ts';
import type { ExchangeRequest } from './exchange_request.ts';
import { resolveOptions, type AgentOptions } from './options.ts';
import { authorizedFetch, type AuthorizedFetch } from './resource_fetch.ts';
import type { ExchangedToken } from './token.ts';
import { type ToolsOptions, type ToolTokens } from './tools.ts';
import { startTask, taskTools, type AgentTask, type StartTaskRequest } from './task.ts';

export interface Agent {
  /** The authorization server's issuer identifier. */
  readonly issuer: string;
  /** RFC 8693 token exchange; refusals are thrown as ExchangeDenied, ApprovalPending or ExchangeFailed. */
  exchange(request: ExchangeRequest, options?: { signal?: AbortSignal }): Promise<ExchangedToken>;
  /** Repeats a pending request with its `review_id` until a reviewer decides. */
  waitForApproval(pending: ApprovalPending, options?: WaitOptions): Promise<ExchangedToken>;
  /** Tokens per tool call, cached per call signature; from a user's token, in one task (see ToolsOptions.task). */
  tools<Tools>(options: ToolsOptions<Tools>): ToolTokens<Tools>;
  /** Starts a task (README, Tasks): tool-call tokens are then drawn from it with its exchange() and tools(). */
  startTask(request: StartTaskRequest, options?: { signal?: AbortSignal }): Promise<AgentTask>;
  /**
   * One request with `token` (and a DPoP proof for a DPoP token), only to the token's resource: its
   * origin, at or beneath its path. Another URL, or a delegation token, is an AgentInputError.
   */
  fetch(token: ExchangedToken, input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /**
   * A fetch-compatible function presenting `token`, e.g. for the MCP SDK's StreamableHTTPClientTransport,
   * with the checks of `fetch` above; throws AgentInputError at once for a delegation token.
   */
  authorizedFetch(token: ExchangedToken): AuthorizedFetch;
  /** The thumbprint (RFC 7638) of the agent's own DPoP key, the `cnf.jkt` of tokens exchanged with `dpop: true`. */
  dpopThumbprint(): Promise<string>;
}

/** An agent of intentgate, configured in oauth4webapi or openid-client style (see AgentOptions). */
export async function createAgent(options: AgentOptions): Promise<Agent> {
  const { transport, allowInsecure } = await resolveOptions(options);
  const agentKey = new AgentKey();
  const handles = new DpopHandles();
  const exchange = (request: ExchangeRequest, signal?: AbortSignal) => exchangeToken({ transport, agentKey }, request, signal);
  return Object.freeze({
    issuer: transport.issuer,
    exchange: (request, opts) => exchange(request, opts?.signal),
    waitForApproval: (pending, opts) => waitForApproval(exchange, pending, opts),
    tools: (opts) => taskTools(transport.issuer, (req) => startTask({ transport, agentKey, exchange }, req), exchange, opts),
    startTask: (req, opts) => startTask({ transport, agentKey, exchange }, req, opts?.signal),
    // async: a refused token rejects, as every other refusal of fetch does, rather than throwing.
    fetch: async (token, input, init) => authorizedFetch({ allowInsecure, handles }, token)(input, init),
    authorizedFetch: (token) => authorizedFetch({ allowInsecure, handles }, token),
    dpopThumbprint: async () => handles.for(await agentKey.get()).calculateThumbprint(),
  } satisfies Agent);
}
