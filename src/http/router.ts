import type { Context } from 'koa';

type Handler = (ctx: Context, params: string[]) => Promise<void> | void;
interface Route { method: string; pattern: RegExp; handler: Handler }

/**
 * Method + path matching with `:param` segments; params arrive percent-decoded. A path that matches
 * with another method answers 405, one that matches nothing is left to the caller.
 */
export class Router {
  readonly #routes: Route[] = [];

  add(method: string, path: string, handler: Handler): this {
    const pattern = new RegExp(`^${path.replace(/:[a-z_]+/g, '([^/]+)')}$`);
    this.#routes.push({ method, pattern, handler });
    return this;
  }

  /** Runs the matching handler. Returns false when no route has this path. */
  async dispatch(ctx: Context): Promise<boolean> {
    let pathMatched = false;
    for (const r of this.#routes) {
      const m = r.pattern.exec(ctx.path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== ctx.method) continue;
      let params: string[];
      try {
        params = m.slice(1).map((p) => decodeURIComponent(p));
        if (params.some((p) => p.includes('\0'))) throw new Error('NUL in path');
      } catch {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', error_description: 'path is not validly percent-encoded' };
        return true;
      }
      await r.handler(ctx, params);
      return true;
    }
    if (pathMatched) {
      ctx.status = 405;
      ctx.body = { error: 'invalid_request', error_description: `method ${ctx.method} is not allowed here` };
      return true;
    }
    return false;
  }
}
