// The console's server side over plain HTTP: the static files and their headers, and the admin API
// routes the console added (whoami, policy validation with lines, decision stats, streamed verification).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_DIR } from '../../src/admin/console.ts';
import { reviewerToken, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
beforeAll(async () => { t = await startTestServer(); });
afterAll(async () => { await t?.stop(); });

describe('console files', () => {
  it('serves the page and its modules with a strict CSP, no framing, and nothing from another origin', async () => {
    for (const p of ['/admin', '/admin/', '/admin/assets/app.js', '/admin/assets/console.css', '/admin/assets/pages/reviews.js']) {
      const r = await fetch(`${t.url}${p}`);
      expect(r.status, p).toBe(200);
      const csp = r.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe');
      expect(r.headers.get('x-frame-options')).toBe('DENY');
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('referrer-policy')).toBe('no-referrer');
      expect(r.headers.get('set-cookie')).toBeNull();
    }
    const html = await (await fetch(`${t.url}/admin`)).text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/); // no inline script
    expect(html).not.toMatch(/\sstyle=|<style/); // no inline style
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from another origin
    expect((await fetch(`${t.url}/admin/assets/app.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);
  });

  it('answers 304 to a matching ETag and 404 to any path that is not one of its files', async () => {
    const first = await fetch(`${t.url}/admin/assets/dom.js`);
    const again = await fetch(`${t.url}/admin/assets/dom.js`, { headers: { 'if-none-match': first.headers.get('etag')! } });
    expect(again.status).toBe(304);
    for (const p of ['/admin/assets/../server.ts', '/admin/assets/%2e%2e/console.ts', '/admin/assets/..%2fconsole.ts', '/admin/assets/tsconfig.json',
      '/admin/assets/nope.js', '/admin/assets/', '/admin/assets/pages', '/admin/index.html', '/admin/x', `/admin/assets/${'a'.repeat(5000)}.js`, '/admin/assets/%00.js']) {
      const r = await fetch(`${t.url}${p}`);
      expect([400, 404], p).toContain(r.status);
      expect(r.headers.get('content-security-policy') ?? "frame-ancestors 'none'").toContain("frame-ancestors 'none'");
    }
    expect((await fetch(`${t.url}/admin`, { method: 'POST' })).status).toBe(405);
  });

  it('builds pages only from elements and text nodes: no HTML parsing, eval or outside URLs in its sources', () => {
    const files = readdirSync(CONSOLE_DIR, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const src = readFileSync(path.join(CONSOLE_DIR, f), 'utf8');
      expect(src, f).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\('on|createContextualFragment|DOMParser/);
      expect(src, f).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg|idp\.example|api\.example)/);
      expect(src, f).not.toMatch(/localStorage|document\.cookie/);
    }
  });
});

describe('admin API routes the console uses', () => {
  it('says who a credential is (whoami), for every role, and 401 without one', async () => {
    const me = await (await t.admin('GET', '/admin/api/whoami')).json();
    expect(me).toMatchObject({ role: 'admin', user: null });
    const rita = await reviewerToken(t, 'https://idp.test', 'rita');
    expect(await (await t.admin('GET', '/admin/api/whoami', undefined, rita)).json()).toMatchObject({ role: 'reviewer', user: { issuer: 'https://idp.test', sub: 'rita' } });
    const auditor = ((await (await t.admin('POST', '/admin/api/admins', { name: 'audit', role: 'auditor' })).json()) as { token: string }).token;
    expect(await (await t.admin('GET', '/admin/api/whoami', undefined, auditor)).json()).toMatchObject({ role: 'auditor' });
    expect((await fetch(`${t.url}/admin/api/whoami`)).status).toBe(401);
  });

  it('validates a draft policy and points at the line of its error', async () => {
    const ok = await (await t.admin('POST', '/admin/api/policies/validate', { document: 'version: 1\nrules:\n  - { id: a, effect: allow, scopes: [x] }\n' })).json();
    expect(ok).toEqual({ valid: true });
    const schema = await (await t.admin('POST', '/admin/api/policies/validate', { document: 'version: 1\nrules:\n  - id: a\n    effect: allow\n    scopes: [x]\n  - id: b\n    effect: perhaps\n    scopes: [y]\n' })).json();
    expect(schema).toMatchObject({ valid: false, error: { line: expect.any(Number), field: expect.stringMatching(/^document\.rules\.1/) } });
    expect([6, 7]).toContain(schema.error.line);
    const syntax = await (await t.admin('POST', '/admin/api/policies/validate', { document: 'version: 1\nrules:\n  - id: a\n   effect: [allow\n' })).json();
    expect(syntax).toMatchObject({ valid: false, error: { line: expect.any(Number) } });
    const rule = await (await t.admin('POST', '/admin/api/policies/validate', { document: 'version: 1\nrules:\n  - id: a\n    effect: deny\n    scopes: [x]\n' })).json();
    expect(rule).toMatchObject({ valid: false, error: { field: 'document.rules.0.reason', line: 3 } });
    // Publishing the same mistake answers 400 with the line too.
    const refused = await t.admin('POST', '/admin/api/policies', { document: 'version: 1\nrules:\n  - id: a\n    effect: deny\n    scopes: [x]\n' });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_request', field: 'document.rules.0.reason', line: 3 });
    for (const body of [{}, { document: '' }, { document: 1 }, { document: 'x', extra: 1 }, { document: 'a'.repeat(262_145) }]) {
      expect([400, 413]).toContain((await t.admin('POST', '/admin/api/policies/validate', body)).status);
    }
  });

  it('counts exchange decisions per hour, and refuses a malformed period', async () => {
    const r = await (await t.admin('GET', '/admin/api/ledger/stats?hours=3')).json() as { buckets: Array<{ start: string; granted: number; denied: number }>; entries: number; latest_checkpoint: unknown };
    expect(r.buckets.length).toBeGreaterThanOrEqual(3);
    expect(r.buckets.length).toBeLessThanOrEqual(4);
    expect(r.entries).toBeGreaterThan(0);
    for (const bad of ['0', '169', '-1', '1.5', 'x', '9'.repeat(3000)]) {
      expect((await t.admin('GET', `/admin/api/ledger/stats?hours=${bad}`)).status, bad).toBe(400);
    }
  });

  it('streams a verification of the whole ledger as NDJSON, ending in its report', async () => {
    // 409: the server's own timer made one already, on a slow machine.
    expect([201, 409]).toContain((await t.admin('POST', '/admin/api/ledger/checkpoint')).status);
    const ndjson = (body: unknown) => fetch(`${t.url}/admin/api/ledger/verify`, {
      method: 'POST', headers: { authorization: `Bearer ${t.adminToken}`, accept: 'application/x-ndjson', 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const r = await ndjson({});
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ progress: { entries: 0, total: expect.any(Number) } });
    expect(lines.at(-1)).toMatchObject({ report: { ok: true, entries: lines[0].progress.total, checkpoints: expect.any(Number) } });
    expect(lines.at(-1).report.checkpoints).toBeGreaterThanOrEqual(1);
    expect((await t.admin('POST', '/admin/api/ledger/verify', { from: 1 })).status).toBe(400);
    expect((await t.admin('POST', '/admin/api/ledger/verify', '[]')).status).toBe(400);
    expect((await fetch(`${t.url}/admin/api/ledger/verify`, { method: 'POST' })).status).toBe(401);
    // An edited entry is named, not hidden.
    const { items: [last] } = await (await t.admin('GET', '/admin/api/ledger?limit=1')).json() as { items: Array<{ seq: number }> };
    const stored = await t.server.db('ledger_entries').where({ seq: last!.seq }).first('payload');
    // As an attacker with write access to the database would: triggers bypassed.
    await t.server.db.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx('ledger_entries').where({ seq: last!.seq }).update({ payload: Buffer.concat([Buffer.from(stored.payload), Buffer.from(' ')]) });
    });
    const tampered = (await (await ndjson({})).text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(tampered.at(-1)).toMatchObject({ report: { ok: false, problem: { seq: last!.seq } } });
  });
});
