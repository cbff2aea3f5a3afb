import type { Db } from '../store/db.ts';
import { leafHashes, toCheckpoint, type Checkpoint } from './checkpoint.ts';
import { consistencyProof, inclusionProof } from './merkle.ts';
import type { LedgerEntry } from './query.ts';

async function leavesUpTo(db: Db, size: number): Promise<Buffer[]> {
  const leaves: Buffer[] = [];
  for await (const { leaf } of leafHashes(db, 0, size)) leaves.push(leaf);
  return leaves;
}

export async function latestCheckpoint(db: Db): Promise<Checkpoint | undefined> {
  const row = await db('ledger_checkpoints').orderBy('tree_size', 'desc').first();
  return row ? toCheckpoint(row) : undefined;
}

export type EntryProof =
  | { entry: LedgerEntry; covered: true; leaf_index: number; checkpoint: Checkpoint; inclusion_proof: string[] }
  | { entry: LedgerEntry; covered: false; message: string; checkpoint: Checkpoint | null };

/** One (already read) entry with its RFC 9162 inclusion proof against the latest signed checkpoint. */
export async function entryProof(db: Db, entry: LedgerEntry): Promise<EntryProof> {
  const seq = entry.seq;
  const checkpoint = await latestCheckpoint(db);
  if (!checkpoint || checkpoint.tree_size < seq) {
    return { entry: entry!, covered: false, message: 'no signed checkpoint covers this entry yet; ask again after the next checkpoint', checkpoint: checkpoint ?? null };
  }
  const leaves = await leavesUpTo(db, checkpoint.tree_size);
  return { entry: entry!, covered: true, leaf_index: seq - 1, checkpoint, inclusion_proof: inclusionProof(leaves, seq - 1).map((h) => h.toString('hex')) };
}

/** RFC 9162 consistency proof from an earlier checkpoint's size to the latest checkpoint. */
export async function checkpointConsistency(db: Db, fromSize: number, latest: Checkpoint): Promise<string[] | undefined> {
  const earlier = await db('ledger_checkpoints').where({ tree_size: fromSize }).first('tree_size');
  if (!earlier || fromSize > latest.tree_size) return undefined;
  return consistencyProof(await leavesUpTo(db, latest.tree_size), fromSize).map((h) => h.toString('hex'));
}
