import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { compactVerify, importJWK, importSPKI, type CryptoKey, type JWK } from 'jose';
import type { Db } from '../store/db.ts';
import { canonicalBytes } from './canonical.ts';
import { CHECKPOINT_TYP, type Checkpoint, toCheckpoint } from './checkpoint.ts';
import { indexColumns } from './entry.ts';
import { chainOf, leafOf, sha256Hex, ZERO_HASH } from './hash.ts';
import { MerkleAccumulator } from './merkle.ts';

export interface VerifyReport {
  ok: boolean;
  entries: number;
  head_hash: string;
  checkpoints: number;
  anchors: number;
  /** The first thing wrong, by sequence number. */
  problem?: { seq: number; message: string };
}

interface Anchor extends Checkpoint { previous_tree_size: number; leaf_hashes: string[]; file: string; leaves?: Buffer[] }

const PAGE = 10_000;

function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export async function publicKeyFrom(text: string): Promise<CryptoKey> {
  if (text.trimStart().startsWith('-----BEGIN')) return importSPKI(text, 'EdDSA');
  const jwk = JSON.parse(text) as JWK;
  const { d: _private, ...pub } = jwk;
  return importJWK(pub, 'EdDSA') as Promise<CryptoKey>;
}

function readAnchors(dir: string): Anchor[] {
  return readdirSync(dir)
    .filter((f) => /^checkpoint-\d+\.json$/.test(f))
    .map((f) => ({ ...(JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Omit<Anchor, 'file'>), file: f }))
    .sort((a, b) => a.tree_size - b.tree_size);
}

async function signatureProblem(c: Checkpoint, key: CryptoKey): Promise<string | undefined> {
  try {
    const { payload, protectedHeader } = await compactVerify(c.jws, key, { algorithms: ['EdDSA'] });
    if (protectedHeader.typ !== CHECKPOINT_TYP) return 'has the wrong JWS typ';
    const expected = canonicalBytes({ tree_size: c.tree_size, root_hash: c.root_hash, timestamp: c.timestamp });
    if (!Buffer.from(payload).equals(expected)) return 'signature covers different values than recorded';
    return undefined;
  } catch {
    return 'has an invalid signature';
  }
}

/**
 * Checks the whole ledger, streamed in sequence order: contiguous sequence numbers, each payload canonical
 * and matching its leaf hash, the chain recomputing, every checkpoint's signature and Merkle root, the
 * anchored copies (leaf by leaf, so an entry rewritten with every later hash recomputed is still named),
 * and that no anchored checkpoint covers more entries than the database holds. Stops at the first problem.
 */
export async function verifyLedger(db: Db, publicKey: CryptoKey, anchorDir?: string, onProgress?: (entries: number) => void): Promise<VerifyReport> {
  const checkpoints = (await db('ledger_checkpoints').orderBy('tree_size', 'asc').select('*')).map(toCheckpoint);
  const anchors = anchorDir ? readAnchors(anchorDir) : [];
  const bySize = new Map(checkpoints.map((c) => [c.tree_size, c]));
  const anchorBySize = new Map(anchors.map((a) => [a.tree_size, a]));
  const report: VerifyReport = { ok: false, entries: 0, head_hash: ZERO_HASH.toString('hex'), checkpoints: 0, anchors: 0 };
  const fail = (seq: number, message: string) => ({ ...report, problem: { seq, message } });

  for (const a of anchors) {
    const bad = await signatureProblem(a, publicKey);
    if (bad) return fail(a.tree_size, `anchored checkpoint ${a.file} ${bad}`);
    if (a.leaf_hashes.length !== a.tree_size - a.previous_tree_size) return fail(a.tree_size, `anchored checkpoint ${a.file} lists the wrong number of leaf hashes`);
  }
  // Anchored leaf hashes by sequence number, consumed as the stream passes them.
  let anchorIdx = 0;
  const anchoredLeaf = (seq: number): { leaf: Buffer; file: string } | undefined => {
    while (anchorIdx < anchors.length && anchors[anchorIdx]!.tree_size < seq) {
      delete anchors[anchorIdx]!.leaves; // decoded a file at a time, released once passed
      anchorIdx++;
    }
    const a = anchors[anchorIdx];
    if (!a || seq <= a.previous_tree_size) return undefined;
    a.leaves ??= a.leaf_hashes.map((h) => Buffer.from(h, 'hex'));
    return { leaf: a.leaves[seq - a.previous_tree_size - 1]!, file: a.file };
  };

  const acc = new MerkleAccumulator();
  let previous: Buffer = ZERO_HASH;
  let last = 0;
  const page = (after: number): Promise<Array<Record<string, any>>> => {
    const p = Promise.resolve(db('ledger_entries').where('seq', '>', after).orderBy('seq', 'asc').limit(PAGE)
      // The time as epoch milliseconds: a number to compare, not a Date to build a million times.
      .select('seq', 'kind', 'actor', 'client_id', 'subject', 'task', 'jti', 'decision', 'payload', 'leaf_hash', 'chain_hash', db.raw('(extract(epoch from at) * 1000)::float8 as at_ms')));
    p.catch(() => {}); // a prefetch abandoned by an early return must not become an unhandled rejection
    return p;
  };
  // The next page is fetched while this one is checked: the database and the hashing overlap.
  let next = page(0);
  for (;;) {
    const rows = await next;
    if (rows.length === 0) break;
    next = page(Number(rows.at(-1)!.seq));
    onProgress?.(last);
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq !== last + 1) return fail(last + 1, `entry ${last + 1} is missing (the next one present is ${seq})`);
      const payload = asBuffer(row.payload); // pg gives Buffers, PGlite Uint8Arrays: view either without copying
      let doc: { seq?: unknown; at?: unknown; kind?: unknown; actor?: unknown; body?: Record<string, unknown> };
      try {
        doc = JSON.parse(payload.toString('utf8'));
      } catch {
        return fail(seq, 'payload is not valid JSON');
      }
      if (doc.seq !== seq) return fail(seq, `payload belongs to entry ${String(doc.seq)}: entries were moved or swapped`);
      const leaf = leafOf(payload);
      if (!leaf.equals(row.leaf_hash)) return fail(seq, 'payload does not match its leaf hash: the entry was edited');
      const chain = chainOf(previous, leaf);
      if (!chain.equals(row.chain_hash)) return fail(seq, 'chain hash does not recompute: this entry or the one before it was altered');
      const cols = indexColumns(doc.body ?? {});
      if (row.kind !== doc.kind || row.actor !== doc.actor || row.at_ms !== Date.parse(doc.at as string)
        || (Object.keys(cols) as Array<keyof typeof cols>).some((k) => (row[k] ?? null) !== cols[k])) {
        return fail(seq, 'indexed columns disagree with the payload');
      }
      const anchored = anchoredLeaf(seq);
      if (anchored && !anchored.leaf.equals(leaf)) return fail(seq, `entry differs from the copy anchored in ${anchored.file}`);
      acc.push(leaf);
      previous = chain;
      last = seq;
      report.entries = seq;
      report.head_hash = chain.toString('hex');

      const c = bySize.get(seq);
      if (c) {
        const bad = await signatureProblem(c, publicKey);
        if (bad) return fail(seq, `checkpoint at ${seq} ${bad}`);
        if (c.root_hash !== acc.root().toString('hex')) return fail(seq, `the Merkle root of checkpoint ${seq} does not match: an entry at or before ${seq} was altered`);
        report.checkpoints++;
      }
      const a = anchorBySize.get(seq);
      if (a) {
        if (a.root_hash !== acc.root().toString('hex')) return fail(seq, `the Merkle root anchored in ${a.file} does not match`);
        // An anchor without its database row is not an error: the row commits after the file is written
        // (a checkpoint in progress, or a crash in between); the anchor's own signature and root were checked.
        report.anchors++;
      }
    }
    onProgress?.(report.entries);
  }
  onProgress?.(last);
  const beyond = [...checkpoints.map((c) => c.tree_size), ...anchors.map((a) => a.tree_size)].filter((n) => n > last);
  if (beyond.length) {
    return fail(last + 1, `a checkpoint covers ${Math.max(...beyond)} entries but the database holds ${last}: entries from ${last + 1} on were removed`);
  }
  // Personal values (erasable, never rewritable): each must still hash to the key the payloads carry.
  let afterHash = '';
  for (;;) {
    const rows = await db('ledger_personal').where('hash', '>', afterHash).orderBy('hash').limit(PAGE).select('hash', 'value');
    if (rows.length === 0) break;
    for (const r of rows) {
      if (sha256Hex(r.value) !== r.hash) {
        const first = await db('ledger_entries').whereRaw('position(? in convert_from(payload, \'UTF8\')) > 0', [r.hash]).orderBy('seq').first('seq');
        return fail(first ? Number(first.seq) : 0, `the personal value ${r.hash} was rewritten`);
      }
    }
    afterHash = rows.at(-1)!.hash;
  }
  const head = await db('ledger_head').where({ id: 1 }).first('seq', 'chain_hash');
  if (!head || Number(head.seq) !== last || !Buffer.from(head.chain_hash).equals(previous)) {
    return fail(last + 1, 'the ledger head does not match the last entry');
  }
  return { ...report, ok: true };
}

/** How many entries the ledger holds (its head's sequence number): the total a verification's progress counts to. */
export async function ledgerSize(db: Db): Promise<number> {
  const head = await db('ledger_head').where({ id: 1 }).first('seq');
  return Number(head?.seq ?? 0);
}
