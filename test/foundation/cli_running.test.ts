import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.ts';
import { createDb } from '../../src/store/db.ts';
import { runCli, runCliHere, runScript, startCli } from '../helpers/cli.ts';
import { freePort, freshDatabase, onPostgres, tokenRequest } from '../helpers/server.ts';

const KEK = randomBytes(32).toString('base64url');
const noStack = (stderr: string) => expect(stderr).not.toMatch(/\n\s+at /);
/** Exactly one line, `intentgate: ...`. */
const oneLine = (stderr: string) => {
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr).toMatch(/^intentgate: /);
};

describe('a port already in use', () => {
  it('is refused before anything is created, in one line that says what to do', async () => {
    const db = await freshDatabase();
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    const before = readdirSync(db.env.DATA_DIR!).sort();
    try {
      const r = await runCli(['start-dev'], { ...db.env, PORT: String(port), LOG_LEVEL: 'warn' });
      expect(r.code).toBe(2);
      oneLine(r.stderr);
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
      expect(r.stderr).toMatch(/PORT=\d+ npm start/);
      // Nothing was made: no KEK or key files in DATA_DIR (the copied database aside), no admin credential.
      expect(readdirSync(db.env.DATA_DIR!).sort()).toEqual(before);
      expect(before).not.toContain('kek');
      if (onPostgres) {
        const knex = createDb({ databaseUrl: db.env.DATABASE_URL, dataDir: db.env.DATA_DIR!, poolMax: 1 });
        try {
          expect(Number((await knex('admins').count('* as n'))[0]!.n)).toBe(0);
        } finally {
          await knex.destroy();
        }
      }
    } finally {
      taken.close();
      await db.drop();
    }
  }, 120_000);
});

describe('every command has its own --help; mistakes are one line', () => {
  it('prints each command\'s usage', async () => {
    const runnable = COMMANDS.filter((c) => c.words[0] !== 'start-dev' && c.words[0] !== 'serve');
    // Four at a time, as the commands of a shell script might be.
    for (let i = 0; i < runnable.length; i += 4) {
      await Promise.all(runnable.slice(i, i + 4).map(async (c) => {
        const r = await runCliHere([...c.words, '--help'], {});
        expect(r.code, c.words.join(' ')).toBe(0);
        expect(r.stdout.startsWith(`usage: intentgate ${c.words.join(' ')}`)).toBe(true);
        expect(r.stdout.length).toBeGreaterThan(c.usage.length + 30);
      }));
    }
  }, 600_000);

  it.each([
    [['client', 'create', '--bogus'], /Unknown option '--bogus'.*intentgate client create --help/],
    [['keys', 'rotate', '--overlap', 'soon'], /--overlap takes a whole number of seconds/],
    [['policy', 'test', '/nonexistent/fixtures.yaml'], /cannot read fixtures file \/nonexistent\/fixtures.yaml: no such file/],
    [['apply', '/nonexistent/setup.yaml'], /cannot read file \/nonexistent\/setup.yaml: no such file/],
    [['issuer', 'add', '--issuer', 'https://idp.example', '--jwks-file', '/nonexistent/jwks.json', '--audience', 'a'], /cannot read JWKS file/],
    [['client', 'rotate-secret'], /takes <client_id>, got none/],
    [['frobnicate'], /unknown command: frobnicate/],
  ])('%j', async (args, message) => {
    const r = await runCliHere(args, { INTENTGATE_KEK: KEK, DATA_DIR: '/nonexistent-ig' });
    expect(r.code).toBe(2);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(message);
  }, 120_000);
});

describe('commands work while a development server runs', () => {
  let env: Record<string, string>;
  let port: number;
  let drop: () => Promise<void>;
  let proc: ReturnType<typeof startCli>;
  const adminToken = `boot-${randomBytes(12).toString('hex')}`;
  const url = () => `http://127.0.0.1:${port}`;
  const cli = (args: string[], extra: Record<string, string> = {}) => runCliHere(args, { ...env, ...extra });

  beforeAll(async () => {
    const db = await freshDatabase();
    drop = db.drop;
    port = await freePort();
    // The CLI's environment: where the data is, and nothing about the port (DATA_DIR tells it).
    env = { ...db.env, INTENTGATE_KEK: KEK, LOG_LEVEL: 'warn' };
    proc = startCli(['start-dev'], { ...env, PORT: String(port), ADMIN_TOKEN: adminToken }, /listening:/);
    await proc.started;
  }, 120_000);
  afterAll(async () => {
    proc?.child.kill('SIGTERM');
    await proc?.exited;
    await drop?.();
  });

  it('registers a resource and clients, lists them, rotates a secret', async () => {
    const res = await cli(['resource', 'create', '--identifier', 'https://expenses.example', '--name', 'Expenses',
      '--scope', 'expenses:read:internal:read', '--scope', 'expenses:submit:confidential:write']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ identifier: 'https://expenses.example' });
    const agent = await cli(['client', 'create', '--client-id', 'agent', '--name', 'Agent', '--grant-types', 'urn:ietf:params:oauth:grant-type:token-exchange', '--scope', 'expenses:read expenses:submit']);
    expect(agent.code).toBe(0);
    const secret = JSON.parse(agent.stdout).client_secret as string;
    expect(secret).toBeTruthy();
    const rotated = await cli(['client', 'rotate-secret', 'agent']);
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout).client_secret).not.toBe(secret);
    const listed = await cli(['client', 'list']);
    expect(JSON.parse(listed.stdout).items.map((c: { client_id: string }) => c.client_id)).toContain('agent');
    const duplicate = await cli(['client', 'create', '--client-id', 'agent', '--name', 'Agent again']);
    expect(duplicate.code).toBe(2);
    oneLine(duplicate.stderr);
    expect(duplicate.stderr).toMatch(/409/);
  }, 300_000);

  it('admin token create is the way back in after losing the bootstrap token; role and revoke work too', async () => {
    const made = await cli(['admin', 'token', 'create', '--name', 'me']);
    expect(made.code).toBe(0);
    const { id, token, created_by } = JSON.parse(made.stdout);
    expect(created_by).toBe('cli');
    const ok = await fetch(`${url()}/admin/api/clients`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect((await cli(['admin', 'token', 'role', id, 'auditor'])).code).toBe(0);
    expect((await cli(['admin', 'token', 'revoke', id])).code).toBe(0);
    const gone = await fetch(`${url()}/admin/api/clients`, { headers: { authorization: `Bearer ${token}` } });
    expect(gone.status).toBe(401);
  }, 300_000);

  it('dev token mints for the running server whatever its port, and the exchange succeeds', async () => {
    const secret = JSON.parse((await cli(['client', 'rotate-secret', 'agent'])).stdout).client_secret as string;
    const minted = await cli(['dev', 'token', '--sub', 'alice', '--scope', 'expenses:read']);
    expect(minted.code).toBe(0);
    const res = await tokenRequest(url(), {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: minted.stdout.trim(),
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', resource: 'https://expenses.example', scope: 'expenses:read', intent: 'Try it',
    }, ['agent', secret]);
    expect(res.status).toBe(200);

    // For another issuer (an explicit ISSUER naming another port), the refusal names both issuers.
    const wrong = await cli(['dev', 'token', '--sub', 'alice', '--scope', 'expenses:read'], { ISSUER: 'http://localhost:1' });
    const refused = await tokenRequest(url(), {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: wrong.stdout.trim(),
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', resource: 'https://expenses.example', scope: 'expenses:read', intent: 'Try it',
    }, ['agent', secret]);
    const body = await refused.json() as { error: string; error_description: string };
    expect(body.error).toBe('invalid_request');
    expect(body.error_description).toBe(`subject_token issuer is not trusted: http://localhost:1/dev-issuer; this server's development issuer is http://localhost:${port}/dev-issuer`);
  }, 300_000);

  it('keys rotate reaches the running server', async () => {
    const r = await cli(['keys', 'rotate', '--overlap', '60']);
    expect(r.code).toBe(0);
    const { kid } = JSON.parse(r.stdout);
    let kids: string[] = [];
    for (let i = 0; i < 300 && !kids.includes(kid); i++) {
      kids = ((await (await fetch(`${url()}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
      if (!kids.includes(kid)) await new Promise((res) => setTimeout(res, 100));
    }
    expect(kids).toContain(kid);
  }, 300_000);

  it('ledger verify, ledger export and policy replay run, with progress on stderr', async () => {
    const verified = await cli(['ledger', 'verify', '--progress']);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^ledger OK: \d+ entries, head [0-9a-f]{64}/);
    expect(verified.stderr).toMatch(/^ledger verify: \d+ entries checked, \d+ s$/m);

    const exported = await cli(['ledger', 'export', '--progress']);
    expect(exported.code).toBe(0);
    const entries = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; kind: string });
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
    expect(entries.map((e) => e.kind)).toEqual(expect.arrayContaining(['admin.resource.created', 'admin.client.created', 'exchange.granted', 'token.refused']));
    expect(exported.stderr).toMatch(new RegExp(`^ledger export: ${entries.length} entries, \\d+ s$`, 'm'));
    const recent = await cli(['ledger', 'export', '--since', '1h']);
    expect(recent.stdout.trim().split('\n')).toHaveLength(entries.length);

    const replayed = await cli(['policy', 'replay', '--policy', 'config/policies/default.yaml', '--progress']);
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toMatch(/^\d+ examined, \d+ would change, \d+ unchanged, \d+ skipped$/m);
    expect(replayed.stderr).toMatch(/^policy replay: replaying, \d+ s$/m);

    const badSince = await cli(['ledger', 'export', '--since', 'yesterday']);
    expect(badSince.code).toBe(2);
    oneLine(badSince.stderr);
    expect(badSince.stderr).toContain('since must look like 7d');
  }, 300_000);

  // The other cases run main() in this process; this one is the binary as installed, in its own process: the
  // bin shim, the exit code, and a long output through a pipe that must arrive whole before the process exits.
  it('the binary in its own process writes the whole export to a pipe and exits with the command\'s code', async () => {
    const here = await cli(['ledger', 'export']);
    const bin = await runScript('bin/intentgate.js', ['ledger', 'export'], env);
    expect(bin.code).toBe(0);
    expect(bin.stderr).toBe('');
    expect(bin.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(here.stdout.trim().split('\n').length);
    expect(bin.stdout.startsWith(here.stdout)).toBe(true);
    expect(bin.stdout.endsWith('}\n')).toBe(true);
    const wrong = await runScript('bin/intentgate.js', ['ledger', 'export', '--since', 'yesterday'], env);
    expect(wrong.code).toBe(2);
    oneLine(wrong.stderr);
  }, 300_000);
});
