/**
 * intentgate/agent: the agent side of intentgate. Exchange a user's token for a down-scoped,
 * intent-bound one (RFC 8693), wait for a human approval, get a token per tool call, and call the
 * resource with it (Bearer or DPoP). Built on oauth4webapi / openid-client; no server code.
 */
export { createAgent, type Agent } from './agent.ts';
export type { AgentOptions, HttpOptions, IssuerOptions, Oauth4webapiOptions, OpenidClientOptions } from './options.ts';
export { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT, type AuthorizationDetail, type ExchangeRequest } from './exchange_request.ts';
export type { ExchangedToken } from './token.ts';
export type { WaitOptions } from './approval.ts';
export type { ToolSpec, ToolsOptions, ToolTokens } from './tools.ts';
export { TASK_TOKEN_TYPE, type AgentTask, type StartTaskRequest, type TaskExchangeRequest, type TaskToolsOptions } from './task.ts';
export type { AuthorizedFetch } from './resource_fetch.ts';
export { DPOP_ALGORITHMS } from './dpop_key.ts';
export { canonicalArgs, MAX_ARGS_BYTES, MAX_ARGS_DEPTH } from './canonical_args.ts';
export { AgentInputError, ApprovalPending, ExchangeDenied, ExchangeFailed, IntentgateError, UnexpectedResponse } from './errors.ts';
