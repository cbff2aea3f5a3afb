import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { loadLedgerKey } from '../../src/ledger/key.ts';
import { publicKeyFrom } from '../../src/ledger/verify.ts';
import { childEnv, runCliHere } from '../helpers/cli.ts';
import { freePort, startTestServer, type TestServer } from '../helpers/server.ts';

describe('keys generate', () => {
  it('makes every secret production needs, which production mode then accepts', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ig-keys-'));
    const file = path.join(dir, 'secrets', 'ledger-key.pem');
    const r = await runCliHere(['keys', 'generate', '--ledger-key', file], {});
    expect(r.code).toBe(0);
    const vars = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(Object.keys(vars)).toEqual(['INTENTGATE_KEK', 'ADMIN_TOKEN', 'INTENTGATE_LEDGER_KEY']);
    expect(Buffer.from(vars.INTENTGATE_KEK!, 'base64')).toHaveLength(32);
    expect(vars.ADMIN_TOKEN).toMatch(/^iga_[A-Za-z0-9_-]{43}$/);
    expect(vars.INTENTGATE_LEDGER_KEY).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const config = loadConfig('production', {
      ISSUER: 'https://auth.example', DATABASE_URL: 'postgres://db/x', INTENTGATE_ANCHOR_DIR: path.join(dir, 'anchors'),
      INTENTGATE_KEK: vars.INTENTGATE_KEK, INTENTGATE_LEDGER_KEY: vars.INTENTGATE_LEDGER_KEY,
    });
    const { key } = await loadLedgerKey(config);
    expect(key.publicJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    // The public half, for verifiers (ledger verify --public-key), beside it.
    await expect(publicKeyFrom(readFileSync(path.join(dir, 'secrets', 'ledger-key.pub.pem'), 'utf8'))).resolves.toBeDefined();

    const again = await runCliHere(['keys', 'generate', '--ledger-key', file], {});
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists; choose another --ledger-key FILE/);
  }, 120_000);
});

describe('deployment files', () => {
  it('docker-compose.yml runs intentgate in production mode on PostgreSQL with every production variable', () => {
    const compose = YAML.parse(readFileSync('docker-compose.yml', 'utf8')) as {
      services: Record<string, { image?: string; build?: string; environment?: Record<string, string>; depends_on?: Record<string, { condition: string }>; secrets?: string[]; volumes?: string[]; healthcheck?: object }>;
      secrets: Record<string, { file: string }>;
      volumes: Record<string, unknown>;
    };
    expect(compose.services.postgres!.image).toMatch(/^postgres:\d+/);
    expect(compose.services.postgres!.healthcheck).toBeDefined();
    const ig = compose.services.intentgate!;
    expect(ig.build).toBe('.');
    expect(ig.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(Object.keys(ig.environment!)).toEqual(expect.arrayContaining(['ISSUER', 'DATABASE_URL', 'INTENTGATE_KEK', 'INTENTGATE_LEDGER_KEY', 'INTENTGATE_ANCHOR_DIR', 'INTENTGATE_ENVIRONMENT']));
    expect(ig.environment!.DATABASE_URL).toMatch(/^postgres:\/\/intentgate:.*@postgres:5432\/intentgate$/);
    for (const s of ig.secrets!) expect(compose.secrets[s]).toBeDefined();
    for (const v of ig.volumes!) expect(compose.volumes).toHaveProperty(v.split(':')[0]!);
    expect(ig.environment!.INTENTGATE_LEDGER_KEY).toBe(`/run/secrets/${ig.secrets![0]}`);
  });

  it('.dockerignore keeps dependencies, local data and keys away from the Docker daemon', () => {
    const ignored = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'data', '.env', '*.pem', '*.jwk', '.git']));
    // Nothing the image copies is ignored.
    const copied = [...readFileSync('Dockerfile', 'utf8').matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
    for (const c of copied) expect(ignored).not.toContain(c);
  });

  it('the README documents every environment variable the configuration reads', () => {
    const readme = readFileSync('README.md', 'utf8');
    const read = [...new Set([...readFileSync('src/config/index.ts', 'utf8').matchAll(/env\.([A-Z_]+)/g)].map((m) => m[1]!))];
    expect(read.length).toBeGreaterThan(10);
    for (const name of read) expect(readme, name).toContain(`| \`${name}\``);
  });
});

describe('npm run example:mcp', () => {
  let t: TestServer;
  beforeAll(async () => { t = await startTestServer(); });
  afterAll(async () => { await t?.stop(); });

  it('starts the example MCP server on its own, registered at the running intentgate', async () => {
    expect(JSON.parse(readFileSync('package.json', 'utf8')).scripts['example:mcp']).toBe('node --conditions=intentgate-source examples/mcp-expenses/standalone.ts');
    const port = await freePort();
    const env = childEnv({ DATA_DIR: t.env.DATA_DIR!, INTENTGATE_KEK: t.env.INTENTGATE_KEK!, MCP_PORT: String(port), ...(t.env.DATABASE_URL ? { DATABASE_URL: t.env.DATABASE_URL } : {}) });
    const child = spawn(process.execPath, ['--conditions=intentgate-source', 'examples/mcp-expenses/standalone.ts'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    try {
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (d) => {
          stderr += d;
          if (stderr.includes('expenses MCP server:')) resolve();
        });
        child.on('close', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      const resource = `http://127.0.0.1:${port}/mcp`;
      expect(stderr).toContain(`protected by intentgate at ${t.issuer}`);
      const meta = await (await fetch(`http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`)).json() as { resource: string; authorization_servers: string[] };
      expect(meta).toMatchObject({ resource, authorization_servers: [expect.stringMatching(new RegExp(`^${t.issuer}/?$`))] });
      const registered = await t.admin('GET', `/admin/api/resources/${encodeURIComponent(resource)}`);
      expect(registered.status).toBe(200);
      expect(((await (await t.admin('GET', '/admin/api/clients/mcp-expenses')).json()) as { resource_server: string }).resource_server).toBe(resource);
      // No token, no tools.
      expect((await fetch(resource, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);
    } finally {
      child.kill('SIGTERM');
    }
    expect(existsSync('examples/mcp-expenses/standalone.ts')).toBe(true);
  }, 180_000);
});
