import type { IncomingMessage, ServerResponse } from 'node:http';
import { toAuthInfo, type ResourceAuthInfo } from './auth_info.ts';
import { errorResponse, ResourceAuthError } from './errors.ts';
import { baseUrlOption, externalUrl } from './base_url.ts';
import { assertStatic, guard } from './guard.ts';
import type { CallRequirement } from './requirement.ts';
import type { ResourceVerifier } from './verifier.ts';

export interface NodeAuthOptions {
  /**
   * The absolute http(s) URL clients use to reach this server: origin plus any path prefix a proxy (or an
   * Express mount) strips, e.g. `https://api.example`. The DPoP `htu` must be this + the request path; the
   * Host header (the client's choice) plays no part.
   */
  baseUrl: string;
}

/** A requirement, or a function of the request (Express's Request, with its params, when `R` says so). */
export type NodeAuthRequirement<R extends IncomingMessage = IncomingMessage> = CallRequirement | ((req: R) => CallRequirement | Promise<CallRequirement>);

export type NodeAuthHandler<R extends IncomingMessage = IncomingMessage> = (req: R, res: ServerResponse, next: (err?: unknown) => void) => Promise<void>;

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: unknown): void {
  res.writeHead(status, { ...headers, 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * Express / node:http middleware: verifies the token, sets `req.auth` (the MCP SDK's AuthInfo shape,
 * so StreamableHTTPServerTransport hands it to tool handlers as `extra.authInfo`) and calls `next()`,
 * or answers the refusal itself. Handlers reach `report()` and checkCall through `accessFrom(req.auth)`.
 * Options and a static requirement are checked here (TypeError), not per request.
 */
export function nodeAuth<R extends IncomingMessage = IncomingMessage>(verifier: ResourceVerifier, requirement: NodeAuthRequirement<R>, options: NodeAuthOptions): NodeAuthHandler<R> {
  const baseUrl = baseUrlOption(options?.baseUrl);
  assertStatic(verifier, requirement);
  return async (req, res, next) => {
    let auth: ResourceAuthInfo;
    try {
      const needed = typeof requirement === 'function' ? await requirement(req) : requirement;
      // Express rewrites req.url under a mounted router; originalUrl is what the client sent.
      const path = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
      const state = await guard(verifier, {
        method: req.method ?? 'GET',
        url: externalUrl(baseUrl, path),
        authorization: req.headers.authorization,
        dpop: req.headers.dpop,
      }, needed);
      auth = toAuthInfo(state, verifier.resource);
    } catch (err) {
      if (err instanceof ResourceAuthError) {
        const { status, headers, body } = errorResponse(err);
        return send(res, status, headers, body);
      }
      // A fault of ours: no detail to the caller, and fail closed.
      return send(res, 500, { 'cache-control': 'no-store' }, { error: 'server_error', error_description: 'the request could not be authorised' });
    }
    (req as IncomingMessage & { auth?: ResourceAuthInfo }).auth = auth;
    next();
  };
}
