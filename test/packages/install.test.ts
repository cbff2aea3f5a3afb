import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The SDK packages as another project gets them: packed, installed from the tarball into a project outside
// this repository, imported on plain Node (no type stripping under node_modules) and type-checked.
const run = promisify(execFile);
const repo = path.resolve('.');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
const SERVER_ONLY = ['@electric-sql/pglite', 'knex', 'pg', 'oidc-provider', 'koa', '@casl/ability', 'intentgate'];

let work: string;
let project: string;
const tarballs: Record<string, string> = {};

async function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  return run(cmd, args, { cwd, env, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'intentgate-pack-'));
  for (const name of ['agent', 'resource']) {
    // `npm pack` runs the package's prepack (its build), so the tarball holds the built dist/.
    const { stdout } = await sh(npm, ['pack', '--json', '--pack-destination', work, '--workspace', `packages/${name}`], repo);
    const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarballs[name] = path.join(work, info!.filename);
    expect(info!.files.map((f) => f.path).filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts'))).toEqual([]);
  }
  project = path.join(work, 'consumer');
  await sh('mkdir', ['-p', project], work);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await sh(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', tarballs.agent!, tarballs.resource!], project);
}, 600_000);

afterAll(() => { if (work) rmSync(work, { recursive: true, force: true }); });

describe('@intentgate/agent and @intentgate/resource as installed packages', () => {
  it('install with only their own dependencies, none of the server\'s', () => {
    const installed = new Set<string>();
    const modules = path.join(project, 'node_modules');
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue;
      if (entry.startsWith('@')) for (const sub of readdirSync(path.join(modules, entry))) installed.add(`${entry}/${sub}`);
      else installed.add(entry);
    }
    expect(installed.has('@intentgate/agent') && installed.has('@intentgate/resource')).toBe(true);
    for (const server of SERVER_ONLY) expect(installed.has(server), server).toBe(false);
    expect(installed.size).toBeLessThan(15);
  });

  it('import on plain Node from node_modules, with no TypeScript source in reach', async () => {
    const script = [
      "const agent = await import('@intentgate/agent');",
      "const resource = await import('@intentgate/resource');",
      "const koa = await import('@intentgate/resource/koa');",
      "if (typeof agent.createAgent !== 'function') throw new Error('createAgent missing');",
      "if (typeof resource.createResourceVerifier !== 'function') throw new Error('createResourceVerifier missing');",
      "if (typeof koa.koaAuth !== 'function') throw new Error('koaAuth missing');",
      "const verifier = resource.createResourceVerifier({ issuer: 'https://as.example', resource: 'https://api.example', introspection: false });",
      "console.log(JSON.stringify({ agent: Object.keys(agent).length, verifier: typeof verifier.authenticate }));",
    ].join('\n');
    writeFileSync(path.join(project, 'smoke.mjs'), script);
    const { stdout } = await sh(process.execPath, ['smoke.mjs'], project, { PATH: process.env.PATH });
    expect(JSON.parse(stdout)).toEqual({ agent: expect.any(Number), verifier: 'function' });
  }, 120_000);

  it('type-check a TypeScript consumer against the published declarations', async () => {
    writeFileSync(path.join(project, 'consumer.ts'), [
      "import { createAgent, ExchangeDenied, type ExchangedToken } from '@intentgate/agent';",
      "import { createResourceVerifier, checkCall, type CallRequirement } from '@intentgate/resource';",
      "export async function example(secret: string): Promise<ExchangedToken | undefined> {",
      "  const agent = await createAgent({ issuer: 'https://as.example', clientId: 'summariser', clientSecret: secret });",
      "  const verifier = createResourceVerifier({ issuer: 'https://as.example', resource: 'https://api.example', introspection: false });",
      "  const needed: CallRequirement = { scope: 'expenses:read' };",
      "  void verifier; void checkCall; void needed;",
      "  try { return await agent.exchange({ subjectToken: 'x', resource: 'https://api.example', intent: 'read' }); }",
      "  catch (err) { if (err instanceof ExchangeDenied) return undefined; throw err; }",
      "}",
      '',
    ].join('\n'));
    writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true,
        skipLibCheck: false, types: ['node'], typeRoots: [path.join(repo, 'node_modules', '@types')],
      },
      files: ['consumer.ts'],
    }));
    const result = await sh(process.execPath, [tsc, '-p', 'tsconfig.json'], project).catch((err: { stdout: string }) => err);
    expect((result as { stdout: string }).stdout).toBe('');
  }, 300_000);

  it('run on Node 22 as well', async () => {
    // Node 22 from the npm registry's `node` package, in a directory of its own.
    const n22 = path.join(work, 'node22');
    await sh('mkdir', ['-p', n22], work);
    writeFileSync(path.join(n22, 'package.json'), JSON.stringify({ name: 'node22', private: true }));
    await sh(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', 'node@22'], n22);
    const node22 = path.join(n22, 'node_modules', '.bin', 'node');
    expect(existsSync(node22)).toBe(true);
    const { stdout: version } = await sh(node22, ['--version'], project);
    expect(version).toMatch(/^v22\./);
    const { stdout } = await sh(node22, ['smoke.mjs'], project, { PATH: process.env.PATH });
    expect(JSON.parse(stdout)).toEqual({ agent: expect.any(Number), verifier: 'function' });
  }, 600_000);
});
