import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';
import { sendError } from '../http/errors.ts';

/** Where the console's committed sources live: plain ES modules and CSS, served as they are (no build step). */
export const CONSOLE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'console');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Nothing from another origin, no inline script or style, no plugins, no framing, no form posts anywhere;
 * `connect-src 'self'` keeps the admin credential from being sent elsewhere even by injected code.
 */
export const CONSOLE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
  "font-src 'none'", "object-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  "manifest-src 'none'", "worker-src 'none'",
].join('; ');

interface Asset { body: Buffer; type: string; etag: string }

/** Reads every file of the console once, at start: the set served is fixed, so no request names a path on disk. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (sub: string) => {
    for (const e of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory()) walk(rel);
      else if (TYPES[path.extname(e.name)] && !e.name.endsWith('.d.ts') && e.name !== 'tsconfig.json') {
        const body = readFileSync(path.join(dir, rel));
        assets.set(rel, { body, type: TYPES[path.extname(e.name)]!, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
      }
    }
  };
  walk('');
  return assets;
}

/** `GET /admin` (the page) and `GET /admin/assets/*` (its modules and styles). Data comes only from `/admin/api`. */
export function adminConsole(dir = CONSOLE_DIR) {
  const assets = loadAssets(dir);
  return (ctx: Context): void => {
    ctx.set('Content-Security-Policy', CONSOLE_CSP);
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    ctx.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=()');
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return sendError(ctx, 405, 'invalid_request', 'use GET');
    const name = ctx.path === '/admin' || ctx.path === '/admin/' ? 'index.html' : ctx.path.startsWith('/admin/assets/') ? ctx.path.slice('/admin/assets/'.length) : undefined;
    const asset = name === undefined ? undefined : assets.get(name);
    if (!asset) return sendError(ctx, 404, 'not_found', `no console file ${ctx.path}`);
    // Revalidated on every load, so a new server version is never mixed with cached modules of an old one.
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('ETag', asset.etag);
    if (ctx.get('if-none-match') === asset.etag) {
      ctx.status = 304;
      return;
    }
    ctx.type = asset.type;
    ctx.body = asset.body;
  };
}
