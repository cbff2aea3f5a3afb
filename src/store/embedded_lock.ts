import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The embedded database is single-process: a server running on it marks DATA_DIR with its pid, and
 * other processes (the CLI, a second server) refuse to open the same files underneath it.
 */
export function embeddedLock(dataDir: string) {
  const file = path.join(dataDir, 'server.pid');
  const holder = (): number | undefined => {
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8'));
    if (!Number.isInteger(pid) || pid === process.pid) return undefined;
    try {
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
  };
  return {
    holder,
    take: () => writeFileSync(file, String(process.pid)),
    release: () => {
      if (existsSync(file) && Number(readFileSync(file, 'utf8')) === process.pid) rmSync(file, { force: true });
    },
  };
}
