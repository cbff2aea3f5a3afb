import { abortable } from './abort.ts';
import type { AgentKey } from './dpop_key.ts';
import { TOKEN_EXCHANGE_GRANT, validateExchange, type ExchangeRequest } from './exchange_request.ts';
import { fromOAuthError } from './server_errors.ts';
import { readToken, type ExchangedToken } from './token.ts';
import type { GrantTransport } from './transport.ts';

export interface ExchangeDeps {
  transport: GrantTransport;
  agentKey: AgentKey;
}

/** One RFC 8693 token exchange: validate, send, read the answer or turn the refusal into a typed error. */
export async function exchangeToken(deps: ExchangeDeps, request: ExchangeRequest, signal?: AbortSignal): Promise<ExchangedToken> {
  const valid = validateExchange(request);
  signal?.throwIfAborted();
  const dpopKey = valid.dpop === 'agent' ? await deps.agentKey.get() : valid.dpop;
  let body;
  try {
    body = await abortable(deps.transport.grant(TOKEN_EXCHANGE_GRANT, valid.params, { dpop: dpopKey, signal }), signal);
  } catch (err) {
    throw await fromOAuthError(err, request);
  }
  return readToken(body, Date.now(), valid.scope, dpopKey, valid.target);
}
