import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../src/cli/main.ts';
import { readServerRecord } from '../../src/ops/server_record.ts';
import { embeddedLock } from '../../src/store/embedded_lock.ts';

const CLI = path.resolve('src/cli.ts');

/**
 * The environment of a process the tests start: only the given variables, PATH, and Node's on-disk compile
 * cache. Every process loads and type-strips the whole server; with the cache, later ones reuse the compiled
 * code (about half the start-up CPU). The cache is keyed by each file's content, so an edit is never stale.
 */
export function childEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', NODE_COMPILE_CACHE: path.join(os.tmpdir(), 'intentgate-test-compile-cache'), ...env };
}

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** A stream that keeps what is written to it. */
function collector() {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, done) { text += chunk; done(); } });
  return { stream, text: () => text };
}

/**
 * Runs `intentgate ...` in this process, through the entry the binary uses, with only the given environment
 * and its own stdout/stderr: the same command without the cost of starting Node (most CLI cases). What only a
 * process shows (the bin shim, signals, a running server, output to a pipe, a second process on one
 * database) stays with runCli.
 */
export async function runCliHere(args: string[], env: Record<string, string>): Promise<CliResult> {
  // The embedded lock takes its own pid for no holder: a server of this process on the same embedded database
  // must have left its address (server.json), or the command would open the database a second time.
  if (!env.DATABASE_URL && env.DATA_DIR && embeddedLock(env.DATA_DIR).holder() === undefined
    && existsSync(path.join(env.DATA_DIR, 'server.pid')) && !readServerRecord(env.DATA_DIR)?.admin_token) {
    throw new Error(`a server of this process holds ${env.DATA_DIR} without an admin address: use runCli`);
  }
  const stdout = collector();
  const stderr = collector();
  const code = await main(args, { env: { ...env }, stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** Runs `intentgate ...` as a separate process on this Node, with only the given environment. */
export function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runScript(CLI, args, env);
}

/**
 * Runs a script of this repository as a separate process on this Node, with only the given environment and
 * the `intentgate-source` condition the npm scripts pass (so @intentgate/* resolve to their sources).
 */
export function runScript(script: string, args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=intentgate-source', script, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts a long-running command and resolves once `ready` appears on stderr. */
export function startCli(args: string[], env: Record<string, string>, ready: RegExp) {
  const child = spawn(process.execPath, [CLI, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  const started = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (ready.test(stderr)) resolve();
    });
    child.on('close', (code) => reject(new Error(`exited ${code} before ready: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, started, exited, output: () => ({ stdout, stderr }) };
}
