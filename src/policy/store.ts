import { readFileSync } from 'node:fs';
import { appendEntry } from '../ledger/append.ts';
import type { Db } from '../store/db.ts';
import { notify } from '../store/notify.ts';
import { compilePolicy, type CompiledPolicy } from './compile.ts';
import { parsePolicyDocument } from './document.ts';

/** The tables src/policy owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['policies'] as const;

export const POLICY_CHANNEL = 'intentgate_policy';
const POLICY_LOCK = 0x1a7e_0003;

export interface PolicyVersion { version: number; source: string; created_at: string; created_by: string; document: string }

function toVersion(row: Record<string, unknown>): PolicyVersion {
  return {
    version: Number(row.version),
    source: row.source as string,
    created_at: new Date(row.created_at as string).toISOString(),
    created_by: row.created_by as string,
    document: row.document as string,
  };
}

/**
 * The policy in force: the highest stored version, compiled once when it is loaded (never per request).
 * A new version is validated and compiled before it is stored, so an invalid document never takes effect.
 */
export class PolicyStore {
  #current: CompiledPolicy | undefined;
  #version = 0;
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Seeds version 1 from `file` when the database holds no policy, then loads the latest. */
  async init(file: string): Promise<void> {
    const text = readFileSync(file, 'utf8');
    parsePolicyDocument(text);
    await this.#db.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [POLICY_LOCK]);
      if (await trx('policies').first('version')) return;
      await trx('policies').insert({ version: 1, document: text, source: file, created_at: new Date(), created_by: 'system' });
      await appendEntry(trx, { kind: 'policy.published', actor: 'system', payload: { version: 1, source: file } });
    });
    await this.load();
  }

  async load(): Promise<void> {
    const row = await this.#db('policies').orderBy('version', 'desc').first();
    if (!row) throw new Error('no policy stored');
    const version = Number(row.version);
    // Loads can overlap (NOTIFY, timer, publish); an answer older than the version in force is ignored.
    if (version <= this.#version) return;
    this.#current = compilePolicy(parsePolicyDocument(row.document), String(version));
    this.#version = version;
  }

  /** The compiled policy in force; throws (fail closed) if none could be loaded. */
  current(): CompiledPolicy {
    if (!this.#current) throw new Error('no policy loaded');
    return this.#current;
  }

  async publish(text: string, source: string, actor: string): Promise<PolicyVersion> {
    parsePolicyDocument(text);
    const row = await this.#db.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [POLICY_LOCK]);
      const last = await trx('policies').max({ v: 'version' }).first();
      const version = Number(last?.v ?? 0) + 1;
      const [inserted] = await trx('policies').insert({ version, document: text, source, created_at: new Date(), created_by: actor }).returning('*');
      await appendEntry(trx, { kind: 'policy.published', actor, payload: { version, source } });
      await notify(trx, POLICY_CHANNEL, String(version));
      return inserted;
    });
    await this.load();
    return toVersion(row);
  }

  async get(version: number): Promise<PolicyVersion | undefined> {
    const row = await this.#db('policies').where({ version }).first();
    return row ? toVersion(row) : undefined;
  }

  async list(): Promise<Array<Omit<PolicyVersion, 'document'>>> {
    const rows = await this.#db('policies').select('version', 'source', 'created_at', 'created_by').orderBy('version', 'desc').limit(200);
    return rows.map((r) => {
      const { document: _d, ...rest } = toVersion({ ...r, document: '' });
      return rest;
    });
  }
}
