import { AgentInputError } from './errors.ts';
import type { ExchangedToken } from './token.ts';

/** Checks that one request URL is somewhere the token may be sent; throws AgentInputError if not. */
export type TargetCheck = (url: URL) => void;

const anywhere: TargetCheck = () => {};

/**
 * Where a token may be presented: only at the resource it was exchanged for. A token and a valid proof
 * sent elsewhere are a gift to whoever runs that server (a DPoP proof is only stopped there if that
 * server checks htu), so the check is ours, before any request.
 *
 * For an http(s) resource the request must have the resource's origin AND lie at or beneath its path,
 * on a segment boundary: `https://api.example/v1` admits `/v1`, `/v1/expenses`, `/v1?x`, not `/v10` or
 * `/v2`. RFC 8707 resources are usually an API's base URL with requests beneath it, so this costs
 * nothing there, while a same-origin service at a sibling path (a gateway, a multi-tenant host) is a
 * different audience and must not see the token either. An MCP resource (`…/mcp`) is called at exactly
 * its own URL. `..` segments (also as `%2e`) are resolved by the URL parser before the comparison;
 * queries (the request's, or a resource's) are not compared.
 *
 * A resource that is not an http(s) URL (a URN) says nothing about where it lives: not checked.
 * A delegation token (exchanged with `audience`) is another agent's subject token: never presented.
 */
export function targetCheck(token: ExchangedToken): TargetCheck {
  if (token.audience !== undefined) {
    throw new AgentInputError('token', `is a delegation token for ${JSON.stringify(token.audience)}: hand it to that agent as its subject token; it is not for calling resources`);
  }
  if (typeof token.resource !== 'string') throw new AgentInputError('token', 'names no resource: present only tokens from agent.exchange or agent.tools');
  const base = URL.parse(token.resource);
  if (!base || (base.protocol !== 'https:' && base.protocol !== 'http:')) return anywhere;
  const below = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
  return (url) => {
    if (url.origin !== base.origin) throw new AgentInputError('url', `${url.origin} is not the origin of the token's resource ${token.resource}`);
    if (url.pathname !== base.pathname && !url.pathname.startsWith(below)) {
      throw new AgentInputError('url', `${url.pathname} is not at or beneath the path of the token's resource ${token.resource}`);
    }
  };
}
