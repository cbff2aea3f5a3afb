import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CompactSign } from 'jose';
import type { Db } from '../store/db.ts';
import { canonicalBytes } from './canonical.ts';
import type { LedgerKey } from './key.ts';
import { MerkleAccumulator } from './merkle.ts';

/** The tables src/ledger owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['ledger_checkpoints'] as const;

const CHECKPOINT_LOCK = 0x1a7e_0004;
export const CHECKPOINT_TYP = 'intentgate-checkpoint+jws';
const PAGE = 10_000;

export interface Checkpoint { tree_size: number; root_hash: string; timestamp: string; kid: string; jws: string }

/** The anchor file for a checkpoint: written once, never rewritten. */
export function anchorFileName(treeSize: number): string {
  return `checkpoint-${String(treeSize).padStart(15, '0')}.json`;
}

/** Streams leaf hashes (seq > after, ≤ upTo) in sequence order, a page at a time. */
export async function* leafHashes(db: Db, after: number, upTo: number): AsyncGenerator<{ seq: number; leaf: Buffer }> {
  let from = after;
  while (from < upTo) {
    const rows = await db('ledger_entries').where('seq', '>', from).andWhere('seq', '<=', upTo).orderBy('seq', 'asc').limit(PAGE).select('seq', 'leaf_hash');
    if (rows.length === 0) return;
    for (const r of rows) yield { seq: Number(r.seq), leaf: Buffer.from(r.leaf_hash) };
    from = Number(rows.at(-1)!.seq);
  }
}

/** Entries appended since the latest checkpoint (all of them when there is none). */
export async function uncheckpointed(db: Db): Promise<number> {
  const head = await db('ledger_head').where({ id: 1 }).first('seq');
  const last = await db('ledger_checkpoints').max('tree_size as size').first();
  return Number(head?.seq ?? 0) - Number(last?.size ?? 0);
}

export function toCheckpoint(row: Record<string, unknown>): Checkpoint {
  return {
    tree_size: Number(row.tree_size),
    root_hash: Buffer.from(row.root_hash as Buffer).toString('hex'),
    timestamp: new Date(row.timestamp as string).toISOString(),
    kid: row.kid as string,
    jws: row.jws as string,
  };
}

/**
 * Signed checkpoints: every so often, the RFC 9162 Merkle root over all entries so far, signed with the
 * ledger key (EdDSA) and written both to the database and as a file in the anchor directory together with
 * the leaf hashes since the previous checkpoint. One process at a time makes them (advisory lock); the
 * running accumulator keeps each new checkpoint's cost proportional to the entries since the last.
 */
export class Checkpointer {
  readonly #db: Db;
  readonly #key: LedgerKey;
  readonly #anchorDir: string;
  readonly #acc = new MerkleAccumulator();
  // With no checkpoint yet, the interval runs from this process's start, not from the epoch: a ledger's
  // first checkpoint comes after checkpoint_interval like every other, not at the first tick.
  readonly #startedAt = Date.now();

  constructor(db: Db, key: LedgerKey, anchorDir: string) {
    this.#db = db;
    this.#key = key;
    this.#anchorDir = anchorDir;
    mkdirSync(anchorDir, { recursive: true });
  }

  /** The public half of the signing key, which verifying needs. */
  get publicJwk(): LedgerKey['publicJwk'] {
    return this.#key.publicJwk;
  }

  async latest(): Promise<Checkpoint | undefined> {
    const row = await this.#db('ledger_checkpoints').orderBy('tree_size', 'desc').first();
    return row ? toCheckpoint(row) : undefined;
  }

  /** Makes a checkpoint if `due(entriesSince, msSince)` says so. Returns it, or undefined. */
  async maybeCheckpoint(due: (entriesSince: number, msSince: number) => boolean): Promise<Checkpoint | undefined> {
    return this.#db.transaction(async (trx) => {
      const { rows } = await trx.raw('select pg_try_advisory_xact_lock(?) as ok', [CHECKPOINT_LOCK]);
      if (!rows[0].ok) return undefined;
      const last = await trx('ledger_checkpoints').orderBy('tree_size', 'desc').first();
      const lastSize = last ? Number(last.tree_size) : 0;
      const head = await trx('ledger_head').where({ id: 1 }).first('seq');
      const size = Number(head.seq);
      const since = Date.now() - (last ? new Date(last.timestamp).getTime() : this.#startedAt);
      if (size <= lastSize || !due(size - lastSize, since)) return undefined;

      const sinceLast: string[] = [];
      for await (const { seq, leaf } of leafHashes(trx, this.#acc.size, size)) {
        if (seq !== this.#acc.size + 1) throw new Error(`ledger sequence gap before entry ${seq}`);
        this.#acc.push(leaf);
        if (seq > lastSize) sinceLast.push(leaf.toString('hex'));
      }
      if (sinceLast.length !== size - lastSize) {
        // The accumulator was already past the last checkpoint (another process made it): read that range.
        sinceLast.length = 0;
        for await (const { leaf } of leafHashes(trx, lastSize, size)) sinceLast.push(leaf.toString('hex'));
      }
      const root = this.#acc.root();
      const file = path.join(this.#anchorDir, anchorFileName(size));
      let checkpoint: Checkpoint;
      if (existsSync(file)) {
        // An earlier attempt wrote the anchor but did not commit the row: the same leaves, so reuse it.
        checkpoint = JSON.parse(readFileSync(file, 'utf8')) as Checkpoint;
        if (checkpoint.root_hash !== root.toString('hex')) throw new Error(`anchor ${file} disagrees with the ledger; run intentgate ledger verify`);
      } else {
        const timestamp = new Date().toISOString();
        const statement = { tree_size: size, root_hash: root.toString('hex'), timestamp };
        const jws = await new CompactSign(canonicalBytes(statement))
          .setProtectedHeader({ alg: 'EdDSA', kid: this.#key.kid, typ: CHECKPOINT_TYP })
          .sign(this.#key.privateKey);
        checkpoint = { ...statement, kid: this.#key.kid, jws };
        // The copy outside the database first: a checkpoint that is only in the database protects nothing.
        writeFileSync(file, `${JSON.stringify({ ...checkpoint, previous_tree_size: lastSize, leaf_hashes: sinceLast })}\n`, { flag: 'wx', mode: 0o444 });
      }
      await trx('ledger_checkpoints').insert({ tree_size: size, root_hash: root, timestamp: new Date(checkpoint.timestamp), kid: checkpoint.kid, jws: checkpoint.jws });
      return { tree_size: size, root_hash: checkpoint.root_hash, timestamp: checkpoint.timestamp, kid: checkpoint.kid, jws: checkpoint.jws };
    });
  }
}
