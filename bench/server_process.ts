// A benchmarked server in its own process (bench/peer.ts, bench/serve.ts), driven over IPC: its first message
// says it is ready (with its URL), later ones answer the parent's questions (bench/child.ts).
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export class ServerProcess {
  #next = 0;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly name: string;
  readonly proc: ChildProcess;
  readonly ready: Record<string, unknown>;
  private constructor(name: string, proc: ChildProcess, ready: Record<string, unknown>) {
    this.name = name;
    this.proc = proc;
    this.ready = ready;
    proc.on('message', (m: { id?: number; result?: unknown; error?: string }) => {
      const p = m.id === undefined ? undefined : this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id!);
      if (m.error !== undefined) p.reject(new Error(`${name}: ${m.error}`));
      else p.resolve(m.result);
    });
    proc.on('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`${name} exited (${code})`));
      this.#pending.clear();
    });
  }

  static start(name: string, file: string, env: Record<string, string | undefined>, flags: string[] = []): Promise<ServerProcess> {
    const proc = fork(path.join(import.meta.dirname, file), [], { env: { ...process.env, ...env }, execArgv: [...process.execArgv, ...flags], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready`)));
      proc.once('message', (m: { ready?: Record<string, unknown> }) => {
        if (m.ready) resolve(new ServerProcess(name, proc, m.ready));
        else reject(new Error(`${name}: unexpected first message`));
      });
    });
  }

  call<T>(op: string, arg?: unknown): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, op, arg });
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    await Promise.race([this.call('close').catch(() => undefined), sleep(15_000)]);
    await Promise.race([exited, sleep(5000)]);
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}
