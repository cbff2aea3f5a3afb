import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, runCliHere, startCli } from '../helpers/cli.ts';
import { freePort, freshDatabase, onPostgres, startTestServer, type TestServer } from '../helpers/server.ts';

const KEK = randomBytes(32).toString('base64url');

describe('production mode refuses unsafe configuration', () => {
  it.each([
    [{}, /ISSUER is required/],
    [{ ISSUER: 'http://auth.example' }, /https/],
    [{ ISSUER: 'https://auth.example' }, /DATABASE_URL is required/],
    [{ ISSUER: 'https://auth.example', DATABASE_URL: 'postgres://127.0.0.1:1/x' }, /INTENTGATE_KEK is required/],
    [{ ISSUER: 'https://auth.example', DATABASE_URL: 'postgres://127.0.0.1:1/x', INTENTGATE_KEK: KEK }, /INTENTGATE_LEDGER_KEY is required/],
    [{ ISSUER: 'https://auth.example', DATABASE_URL: 'postgres://127.0.0.1:1/x', INTENTGATE_KEK: KEK, INTENTGATE_LEDGER_KEY: '/nonexistent' }, /INTENTGATE_ANCHOR_DIR is required/],
    [{ ISSUER: 'https://auth.example', DATABASE_URL: 'postgres://127.0.0.1:1/x', INTENTGATE_KEK: 'short', INTENTGATE_LEDGER_KEY: '/nonexistent', INTENTGATE_ANCHOR_DIR: '/tmp' }, /32 random bytes/],
  ])('serve with %j', async (env, message) => {
    const r = await runCliHere(['serve'], env as Record<string, string>);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('rejects unknown commands with usage', async () => {
    const r = await runCliHere(['frobnicate'], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage: intentgate');
  });
});

describe('development mode start and graceful shutdown', () => {
  it('prints the URL and a one-time admin token, serves, and exits cleanly on SIGTERM', async () => {
    const db = await freshDatabase();
    const port = await freePort();
    const proc = startCli(['start-dev'], { ...db.env, PORT: String(port), LOG_LEVEL: 'warn' }, /admin token \(shown once/);
    try {
      await proc.started;
      const { stderr } = proc.output();
      expect(stderr).toContain('DEVELOPMENT MODE');
      expect(stderr).toContain(`http://localhost:${port}`);
      const token = /admin token \(shown once, stored hashed\): (\S+)/.exec(stderr)![1]!;
      const doc = await (await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`)).json() as { issuer: string };
      expect(doc.issuer).toBe(`http://localhost:${port}`);
      const admin = await fetch(`http://127.0.0.1:${port}/admin/api/clients`, { headers: { authorization: `Bearer ${token}` } });
      expect(admin.status).toBe(200);
      // The token never reaches the log.
      expect(proc.output().stdout).not.toContain(token);
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    } finally {
      proc.child.kill('SIGKILL');
      await db.drop();
    }
  }, 180_000);
});

describe('CLI administration', () => {
  let env: Record<string, string>;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const db = await freshDatabase({ empty: true });
    env = { ...db.env, INTENTGATE_KEK: KEK };
    drop = db.drop;
  });
  afterAll(async () => { await drop?.(); });

  it('migrates, registers a resource, client and issuer, rotates, manages admin tokens', async () => {
    const migrated = await runCliHere(['migrate'], env);
    expect(migrated.code).toBe(0);
    expect(JSON.parse(migrated.stdout).applied).toEqual(['001_foundation', '002_exchange', '003_ledger_chain', '004_integrity', '005_history_index', '006_reviews', '007_dpop', '008_history_per_resource', '009_admin_roles', '010_tasks', '011_behaviour']);

    const res = await runCliHere(['resource', 'create', '--identifier', 'https://cli.example', '--name', 'CLI', '--scope', 'cli.read'], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('name:sensitivity:operation');
    const res2 = await runCliHere(['resource', 'create', '--identifier', 'https://cli.example', '--name', 'CLI', '--scope', 'cli:read:internal:read', '--scope', 'cli:write:secret:write'], env);
    expect(res2.code).toBe(2);
    expect(res2.stderr).toContain('scopes.1.sensitivity must be one of: public, internal, confidential, restricted');
    const res3 = await runCliHere(['resource', 'create', '--identifier', 'https://cli.example', '--name', 'CLI', '--scope', 'cli:read:internal:read'], env);
    expect(res3.code).toBe(0);
    expect(JSON.parse(res3.stdout).scopes).toEqual([{ name: 'cli:read', sensitivity: 'internal', operation: 'read' }]);

    const client = await runCliHere(['client', 'create', '--client-id', 'cli-svc', '--name', 'CLI service', '--scope', 'cli:read'], env);
    expect(client.code).toBe(0);
    const created = JSON.parse(client.stdout);
    expect(created.client_secret).toBeTruthy();
    const rotated = await runCliHere(['client', 'rotate-secret', 'cli-svc'], env);
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout).client_secret).not.toBe(created.client_secret);
    const listed = await runCliHere(['client', 'list'], env);
    expect(JSON.parse(listed.stdout).items.map((c: { client_id: string }) => c.client_id)).toEqual(['cli-svc']);

    const issuer = await runCliHere(['issuer', 'add', '--issuer', 'https://idp.example', '--jwks-uri', 'https://idp.example/jwks', '--audience', 'intentgate', '--typ', 'JWT'], env);
    expect(issuer.code).toBe(0);
    expect(JSON.parse(issuer.stdout)).toMatchObject({ issuer: 'https://idp.example', typs: ['JWT'], audiences: ['intentgate'] });

    const admin = await runCliHere(['admin', 'token', 'create', '--name', 'ops'], env);
    expect(admin.code).toBe(0);
    const { id, token } = JSON.parse(admin.stdout);
    expect(token).toMatch(/^iga_/);
    const second = await runCliHere(['admin', 'token', 'create', '--name', 'ops2'], env);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ role: 'admin', user: null, created_by: 'cli' });
    const reviewer = await runCliHere(['admin', 'token', 'create', '--name', 'rita', '--role', 'reviewer', '--issuer', 'https://idp.example', '--sub', 'rita'], env);
    expect(reviewer.code).toBe(0);
    const rita = JSON.parse(reviewer.stdout);
    expect(rita).toMatchObject({ role: 'reviewer', user: { issuer: 'https://idp.example', sub: 'rita' } });
    const demoted = await runCliHere(['admin', 'token', 'role', rita.id, 'auditor'], env);
    expect(demoted.code).toBe(0);
    expect(JSON.parse(demoted.stdout)).toMatchObject({ id: rita.id, role: 'auditor' });
    const revoked = await runCliHere(['admin', 'token', 'revoke', id], env);
    expect(revoked.code).toBe(0);
    const bad = await runCliHere(['client', 'create', '--auth-method', 'none'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('token_endpoint_auth_method');
  }, 600_000);
});

describe.skipIf(!onPostgres)('several processes on one database (PostgreSQL only)', () => {
  let t: TestServer;
  beforeAll(async () => { t = await startTestServer(); });
  afterAll(async () => { await t?.stop(); });

  it('a key rotated by the CLI in another process reaches the running server by NOTIFY', async () => {
    const before = (await (await fetch(`${t.url}/jwks`)).json() as { keys: Array<{ kid: string }> }).keys;
    const r = await runCli(['keys', 'rotate', '--overlap', '60'], { DATABASE_URL: t.env.DATABASE_URL!, INTENTGATE_KEK: t.env.INTENTGATE_KEK!, DATA_DIR: t.env.DATA_DIR! });
    expect(r.code).toBe(0);
    const { kid } = JSON.parse(r.stdout);
    let kids: string[] = [];
    for (let i = 0; i < 300 && !kids.includes(kid); i++) {
      await new Promise((res) => setTimeout(res, 100));
      kids = (await (await fetch(`${t.url}/jwks`)).json() as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    }
    expect(kids).toEqual([...before.map((k) => k.kid), kid]);
  });
});

describe('policy fixtures and the development issuer', () => {
  it('policy test passes the shipped fixtures and fails a wrong expectation with exit 1', async () => {
    const ok = await runCliHere(['policy', 'test', 'test/fixtures/policy/default.fixtures.yaml'], {});
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^\d+ passed, 0 failed$/m);
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/ig-fixtures-');
    writeFileSync(`${dir}/wrong.yaml`, [
      'resources:',
      '  - identifier: https://expenses.example',
      '    scopes: [{ name: expenses:read, sensitivity: internal, operation: read }]',
      'cases:',
      '  - name: reading is denied (wrong on purpose)',
      '    input:',
      '      requestedScopes: [expenses:read]',
      '      resource: https://expenses.example',
      '      client: { id: agent, grant_types: ["urn:ietf:params:oauth:grant-type:token-exchange"] }',
      '      user: { issuer: https://idp.test, sub: alice, claims: {} }',
      '      details: []',
      '      delegated: false',
      '      now: "2026-11-25T10:00:00Z"',
      '    expect: { outcome: deny }',
    ].join('\n'));
    const bad = await runCliHere(['policy', 'test', `${dir}/wrong.yaml`], {});
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('FAIL reading is denied (wrong on purpose)');
    expect(bad.stdout).toMatch(/^0 passed, 1 failed$/m);
  });

  it('dev token mints a user token the development-mode server accepts for exchange', async () => {
    const { startTestServer } = await import('../helpers/server.ts');
    const t = await startTestServer();
    try {
      await t.admin('POST', '/admin/api/resources', { identifier: 'https://expenses.example', name: 'E', scopes: [{ name: 'expenses:read', sensitivity: 'internal', operation: 'read' }] });
      const created = await (await t.admin('POST', '/admin/api/clients', { client_id: 'agent', grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'], scope: 'expenses:read' })).json() as { client_secret: string };
      const r = await runCliHere(['dev', 'token', '--sub', 'alice', '--scope', 'expenses:read', '--claim', 'groups=["managers"]'], { DATA_DIR: t.env.DATA_DIR!, PORT: t.env.PORT!, ISSUER: t.env.ISSUER! });
      expect(r.code).toBe(0);
      const userToken = r.stdout.trim();
      const { tokenRequest } = await import('../helpers/server.ts');
      const res = await tokenRequest(t.url, {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: userToken, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        resource: 'https://expenses.example', scope: 'expenses:read', intent: 'Try intentgate out',
      }, ['agent', created.client_secret]);
      expect(res.status).toBe(200);
    } finally {
      await t.stop();
    }
  });
});
