// What a benchmarked server process (bench/peer.ts, bench/serve.ts) answers its parent over the IPC
// channel: its resident memory and CPU time, and a CPU profile of a window the parent chooses. The
// parent measures every server the same way, from outside its event loop.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

export interface Usage { rss: number; heapUsed: number; heapTotal: number; external: number; cpuMicros: number }

type Handler = (arg: unknown) => Promise<unknown> | unknown;

export function serveParent(extra: Record<string, Handler>, close: () => Promise<void>): void {
  let session: Session | undefined;
  const ops: Record<string, Handler> = {
    usage: (): Usage => {
      const cpu = process.cpuUsage();
      const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
      return { rss, heapUsed, heapTotal, external, cpuMicros: cpu.user + cpu.system };
    },
    'profile-start': async () => {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      // 200 µs: fine enough for functions of a few µs, cheap enough not to skew the window much.
      await session.post('Profiler.setSamplingInterval', { interval: 200 });
      await session.post('Profiler.start');
      return true;
    },
    'profile-stop': async (file) => {
      if (!session) throw new Error('no profile running');
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      session = undefined;
      writeFileSync(String(file), JSON.stringify(profile));
      return file;
    },
    close: async () => {
      await close();
      setImmediate(() => process.exit(0));
      return true;
    },
    ...extra,
  };
  process.on('message', (m: { id: number; op: string; arg?: unknown }) => {
    const op = ops[m.op];
    Promise.resolve()
      .then(() => {
        if (!op) throw new Error(`unknown op ${m.op}`);
        return op(m.arg);
      })
      .then((result) => process.send!({ id: m.id, result }), (err: Error) => process.send!({ id: m.id, error: err.message }));
  });
  // The parent went away (interrupted): nothing else will stop this process.
  process.on('disconnect', () => void close().finally(() => process.exit(0)));
}
