import type { Context, Middleware, Next } from 'koa';
import { errorResponse, ResourceAuthError } from './errors.ts';
import { externalUrl, guard, type AuthState } from './guard.ts';
import type { CallRequirement } from './requirement.ts';
import type { ResourceVerifier } from './verifier.ts';

export interface KoaAuthOptions {
  /** The external origin (and path prefix) clients address, for DPoP htu; see externalUrl. Recommended. */
  baseUrl?: string;
}

export type KoaAuthRequirement = CallRequirement | ((ctx: Context) => CallRequirement | Promise<CallRequirement>);

/**
 * Koa middleware: verifies the request's token against the requirement, sets `ctx.state.auth`
 * (with `report()`), or answers the refusal itself. Without `baseUrl`, the URL is Koa's protocol and
 * host, which trust X-Forwarded-* only when `app.proxy` is set.
 */
export function koaAuth(verifier: ResourceVerifier, requirement: KoaAuthRequirement = {}, options: KoaAuthOptions = {}): Middleware<{ auth: AuthState }> {
  return async (ctx, next: Next) => {
    const needed = typeof requirement === 'function' ? await requirement(ctx) : requirement;
    try {
      ctx.state.auth = await guard(verifier, {
        method: ctx.method,
        url: externalUrl(options.baseUrl, `${ctx.protocol}://${ctx.host}`, ctx.originalUrl),
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
