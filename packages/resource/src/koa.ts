import type { Context, Middleware, Next } from 'koa';
import { baseUrlOption, externalUrl } from './base_url.ts';
import { errorResponse, ResourceAuthError } from './errors.ts';
import { assertStatic, guard, type AuthState } from './guard.ts';
import type { CallRequirement } from './requirement.ts';
import type { ResourceVerifier } from './verifier.ts';

export interface KoaAuthOptions {
  /**
   * The absolute http(s) URL clients use to reach this app: origin plus any path prefix a proxy strips,
   * e.g. `https://api.example`. The DPoP `htu` must be this + the request path; the Host header (the
   * client's choice) plays no part.
   */
  baseUrl: string;
}

export type KoaAuthRequirement = CallRequirement | ((ctx: Context) => CallRequirement | Promise<CallRequirement>);

/**
 * Koa middleware: verifies the request's token against the requirement, sets `ctx.state.auth`
 * (with `report()`), or answers the refusal itself. Options and a static requirement are checked
 * here (TypeError), not per request.
 */
export function koaAuth(verifier: ResourceVerifier, requirement: KoaAuthRequirement, options: KoaAuthOptions): Middleware<{ auth: AuthState }> {
  const baseUrl = baseUrlOption(options?.baseUrl);
  assertStatic(verifier, requirement);
  return async (ctx, next: Next) => {
    const needed = typeof requirement === 'function' ? await requirement(ctx) : requirement;
    try {
      ctx.state.auth = await guard(verifier, {
        method: ctx.method,
        url: externalUrl(baseUrl, ctx.originalUrl),
        authorization: ctx.get('authorization') || undefined,
        dpop: ctx.req.headers.dpop,
      }, needed);
    } catch (err) {
      if (!(err instanceof ResourceAuthError)) throw err;
      const { status, headers, body } = errorResponse(err);
      ctx.status = status;
      ctx.set(headers);
      ctx.body = body;
      return;
    }
    await next();
  };
}
