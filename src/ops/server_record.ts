import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * What a development server running on DATA_DIR tells local tools (the CLI) about itself: where it listens,
 * its issuer, and, on the embedded database (which only that process may open), a credential for its admin
 * API. The file is readable by its owner only; whoever can read DATA_DIR can read the database files there
 * anyway, so it grants nothing new.
 */
export interface ServerRecord {
  pid: number;
  /** A URL this machine reaches the server at. */
  url: string;
  issuer: string;
  /** Bearer for the admin API, valid while this process runs; only on the embedded database. */
  admin_token?: string;
}

const file = (dataDir: string) => path.join(dataDir, 'server.json');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function writeServerRecord(dataDir: string, record: ServerRecord): void {
  mkdirSync(dataDir, { recursive: true });
  // 0600 from the start, and replaced whole in one rename: several servers sharing DATA_DIR (on PostgreSQL)
  // never leave a mixed or half-written file, and the last to start is the one named.
  const tmp = `${file(dataDir)}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, JSON.stringify(record), { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file(dataDir));
}

/** The record of the server running on DATA_DIR, if one runs; a stale file from a crash is ignored. */
export function readServerRecord(dataDir: string): ServerRecord | undefined {
  if (!existsSync(file(dataDir))) return undefined;
  try {
    const r = JSON.parse(readFileSync(file(dataDir), 'utf8')) as ServerRecord;
    if (!Number.isInteger(r.pid) || typeof r.url !== 'string' || typeof r.issuer !== 'string') return undefined;
    return alive(r.pid) ? r : undefined;
  } catch {
    return undefined;
  }
}

export function removeServerRecord(dataDir: string): void {
  const r = existsSync(file(dataDir)) ? (() => { try { return JSON.parse(readFileSync(file(dataDir), 'utf8')) as ServerRecord; } catch { return undefined; } })() : undefined;
  if (r?.pid === process.pid) rmSync(file(dataDir), { force: true });
}
