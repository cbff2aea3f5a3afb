import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliHere } from '../helpers/cli.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// `intentgate apply`: declarative, idempotent set-up, here against a running server's database.
let t: TestServer;
let dir: string;
let env: Record<string, string>;
beforeAll(async () => {
  t = await startTestServer();
  dir = mkdtempSync(path.join(os.tmpdir(), 'ig-apply-'));
  env = { DATA_DIR: t.env.DATA_DIR!, INTENTGATE_KEK: t.env.INTENTGATE_KEK!, ...(t.env.DATABASE_URL ? { DATABASE_URL: t.env.DATABASE_URL } : {}) };
  writeFileSync(path.join(dir, 'policy.yaml'), [
    'version: 1',
    'rules:',
    '  - id: read',
    '    effect: allow',
    '    resource: https://apply.example',
    '    scopes: [apply:read]',
    '',
  ].join('\n'));
});
afterAll(async () => { await t?.stop(); });

const declared = (clientScope: string, role: string) => ({
  issuers: [{ issuer: 'https://idp.apply.example', jwks_uri: 'https://idp.apply.example/jwks', audiences: ['intentgate'], typs: ['JWT'] }],
  resources: [{
    identifier: 'https://apply.example', name: 'Apply',
    scopes: [{ name: 'apply:read', sensitivity: 'internal', operation: 'read' }, { name: 'apply:write', sensitivity: 'confidential', operation: 'write' }],
  }],
  clients: [
    { client_id: 'apply-agent', client_name: 'Apply agent', grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'], scope: clientScope },
    { client_id: 'apply-rs', resource_server: 'https://apply.example' },
  ],
  admins: [{ name: 'rita', role, user: { issuer: 'https://idp.apply.example', sub: 'rita' } }],
  policy: { file: 'policy.yaml' },
});

function write(name: string, doc: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof doc === 'string' ? doc : YAML.stringify(doc));
  return file;
}

describe('intentgate apply', () => {
  it('creates what is declared, then a second run changes nothing and says so', async () => {
    const file = write('setup.yaml', declared('apply:read', 'reviewer'));
    const first = await runCliHere(['apply', file], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('created issuer https://idp.apply.example');
    expect(first.stdout).toContain('created resource https://apply.example');
    expect(first.stdout).toMatch(/created client apply-agent; client_secret \(shown once\): \S+/);
    expect(first.stdout).toMatch(/created admin rita \(reviewer\); token \(shown once\): iga_\S+/);
    expect(first.stdout).toMatch(/published policy version \d+ \(was 1\)/);
    expect(first.stdout.trim().split('\n').at(-1)).toBe('5 created, 1 updated, 0 unchanged');

    const agent = await (await t.admin('GET', '/admin/api/clients/apply-agent')).json();
    expect(agent).toMatchObject({ client_name: 'Apply agent', scope: 'apply:read' });
    expect(await (await t.admin('GET', '/admin/api/clients/apply-rs')).json()).toMatchObject({ resource_server: 'https://apply.example' });
    const current = await (await t.admin('GET', '/admin/api/policies/current')).json() as { document: string; source: string };
    expect(current.document).toContain('apply:read');

    const second = await runCliHere(['apply', file], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe('nothing to change: all 6 declared items are as declared\n');
    expect((await (await t.admin('GET', '/admin/api/policies')).json() as { items: unknown[] }).items).toHaveLength(2);
  }, 300_000);

  it('updates only the fields that differ; --dry-run says what it would do and does nothing', async () => {
    const file = write('changed.yaml', declared('apply:read apply:write', 'auditor'));
    const dry = await runCliHere(['apply', file, '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('would have updated client apply-agent (scope)');
    expect(dry.stdout).toContain('would have updated admin rita (role reviewer -> auditor)');
    expect(((await (await t.admin('GET', '/admin/api/clients/apply-agent')).json()) as { scope: string }).scope).toBe('apply:read');

    const real = await runCliHere(['apply', file], env);
    expect(real.code).toBe(0);
    expect(real.stdout).toBe([
      'updated client apply-agent (scope)',
      'updated admin rita (role reviewer -> auditor)',
      '0 created, 2 updated, 4 unchanged',
      '',
    ].join('\n'));
    expect(((await (await t.admin('GET', '/admin/api/clients/apply-agent')).json()) as { scope: string }).scope).toBe('apply:read apply:write');
    expect((await runCliHere(['apply', file], env)).stdout).toMatch(/^nothing to change/);
  }, 300_000);

  it('a mistake is one line naming the item or the section', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ realms: [] }, /unknown section realms/],
      [{ resources: { identifier: 'x' } }, /resources must be a list of mappings/],
      [{ clients: [{ client_name: 'no id' }] }, /every entry of clients needs client_id/],
      [{ resources: [{ identifier: 'https://bad.example', name: 'Bad', scopes: [{ name: 'bad:read', sensitivity: 'secret', operation: 'read' }] }] }, /^intentgate: resource https:\/\/bad.example: .*sensitivity/],
      [{ admins: [{ name: 'rita', role: 'auditor', user: { issuer: 'https://idp.apply.example', sub: 'someone-else' } }] }, /admin rita is bound to .*fixed at creation/],
      [{ policy: { file: 'missing.yaml' } }, /cannot read policy file .*missing.yaml: no such file/],
      ['clients: [unclosed', /not valid YAML/],
    ];
    for (const [doc, message] of cases) {
      const r = await runCliHere(['apply', write('bad.yaml', doc)], env);
      expect(r.code, JSON.stringify(doc)).toBe(2);
      expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  }, 300_000);
});
