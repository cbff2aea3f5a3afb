// Migrates one database before any test file runs; every file then starts from a copy of it (a PostgreSQL
// template database, or a copied PGlite directory) instead of migrating from scratch.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { adminQuery } from './pg_admin.ts';
import type { TestProject } from 'vitest/node';
import { createDb } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The migrated template: a PostgreSQL database name, or a PGlite data directory. */
    migratedTemplate: string;
  }
}


export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.DATABASE_URL) {
    const name = `ig_template_${randomBytes(6).toString('hex')}`;
    await adminQuery(`CREATE DATABASE ${name}`);
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = `/${name}`;
    const db = createDb({ databaseUrl: url.toString(), dataDir: os.tmpdir() });
    try {
      await migrate(db);
    } finally {
      await db.destroy();
    }
    project.provide('migratedTemplate', name);
    return async () => { await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); };
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'intentgate-template-'));
  const db = createDb({ databaseUrl: undefined, dataDir });
  try {
    await migrate(db);
  } finally {
    await db.destroy();
  }
  project.provide('migratedTemplate', dataDir);
  return async () => rmSync(dataDir, { recursive: true, force: true });
}
