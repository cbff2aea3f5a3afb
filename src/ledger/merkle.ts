/**
 * RFC 9162 (Certificate Transparency v2) Merkle tree hashing, §2.1, over SHA-256.
 *
 * The inputs are leaf hashes, `SHA-256(0x00 ‖ entry)`, which the ledger computes when it appends an entry
 * ({@link leafHash} is provided for that). Interior nodes are `SHA-256(0x01 ‖ left ‖ right)`, and the tree
 * over n leaves splits at k, the largest power of two smaller than n (§2.1.1), so every tree is a sequence
 * of perfect subtrees of decreasing size. The root of the empty tree is `SHA-256("")`.
 *
 * Generators (`rootFromLeaves`, `inclusionProof`, `consistencyProof`, `MerkleAccumulator.push`) refuse
 * malformed input by throwing: a leaf hash that is not a 32-byte Uint8Array (TypeError / RangeError), an
 * index or size out of range (RangeError).
 *
 * Verifiers (`verifyInclusion`, `verifyConsistency`) answer `false` for anything that fails to prove the
 * claim, including a proof element, leaf or root that is not 32 bytes, an index at or past the tree size,
 * and an old size greater than the new one. They throw only for arguments no caller should pass: an
 * index or size that is not a non-negative safe integer (RangeError), a proof that is not an array
 * (TypeError).
 *
 * Performance note: hashing dominates, and Node's one-shot `crypto.hash` is cheapest when it does not have
 * to allocate a Buffer for its result. Internally a node hash is therefore carried as a 32-character
 * "binary" (latin1) string, one character per byte, and decoded into a reused 65-byte scratch buffer to
 * feed the next hash. Everything exported takes and returns Buffers.
 */
import { createHash, hash } from 'node:crypto';

/** Bytes in every leaf hash, node hash and root. */
export const HASH_SIZE = 32;

/** A node hash as a 32-character binary string (internal only). */
type Node = string;

const LEAF_PREFIX = Buffer.from([0x00]);
const EMPTY_ROOT: Node = hash('sha256', '', 'binary');
// 0x01 ‖ left ‖ right. Safe to reuse: every use is synchronous, start to finish.
const scratch = Buffer.alloc(1 + 2 * HASH_SIZE);
scratch[0] = 0x01;

/** `SHA-256(0x00 ‖ data)`: the RFC 9162 leaf hash of one entry's bytes. */
export function leafHash(data: Uint8Array): Buffer {
  if (!(data instanceof Uint8Array)) throw new TypeError(`leafHash: data must be a Uint8Array or Buffer, got ${kindOf(data)}`);
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}

/** `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  checkHash(left, 'nodeHash: left');
  checkHash(right, 'nodeHash: right');
  return toBuffer(pair(left, right));
}

/**
 * MTH(D[n]) (§2.1.1) over already-computed leaf hashes. Iterative, level by level: pairing neighbours and
 * carrying an odd last node up unchanged builds exactly the tree that splitting at the largest power of
 * two does. Uses n/2 working slots; for a streaming O(log n) computation use {@link MerkleAccumulator}.
 */
export function rootFromLeaves(leaves: readonly Uint8Array[]): Buffer {
  checkLeaves(leaves, 'rootFromLeaves');
  return toBuffer(rangeRoot(leaves, 0, leaves.length));
}

/**
 * Computes MTH over leaves that arrive one at a time, holding only the compact range: the roots of the
 * perfect subtrees the leaves so far decompose into (one per set bit of `size`, largest first), so
 * O(log n) hashes however many leaves go by.
 */
export class MerkleAccumulator {
  /** Roots of the perfect subtrees of two or more leaves, leftmost (largest) first. */
  #peaks: Node[] = [];
  /** When `size` is odd, a copy of the last leaf: the one-leaf subtree at the right edge. */
  readonly #pending = Buffer.alloc(HASH_SIZE);
  #size = 0;

  /** Number of leaves pushed so far. */
  get size(): number {
    return this.#size;
  }

  push(leaf: Uint8Array): void {
    checkHash(leaf, 'MerkleAccumulator.push: leaf');
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new RangeError('MerkleAccumulator.push: the tree is full');
    if (this.#size % 2 === 0) {
      this.#pending.set(leaf);
    } else {
      // Each further trailing set bit of the old size is a perfect subtree the same size as the one just
      // completed, so they merge, right to left, like a binary counter carrying.
      let node = pair(this.#pending, leaf);
      let remaining = (this.#size - 1) / 2;
      while (remaining % 2 === 1) {
        node = pair(this.#peaks.pop()!, node);
        remaining = (remaining - 1) / 2;
      }
      this.#peaks.push(node);
    }
    this.#size++;
  }

  /** MTH of the leaves pushed so far (`SHA-256("")` before the first). */
  root(): Buffer {
    const peaks = this.#peaks;
    let node: Node | Uint8Array | undefined = this.#size % 2 === 1 ? this.#pending : undefined;
    for (let i = peaks.length - 1; i >= 0; i--) node = node === undefined ? peaks[i]! : pair(peaks[i]!, node);
    if (node === undefined) return toBuffer(EMPTY_ROOT);
    return typeof node === 'string' ? toBuffer(node) : Buffer.from(node);
  }
}

/**
 * PATH(index, D[n]) (§2.1.3.1): the audit path from leaf `index` to the root of the tree over all of
 * `leaves`, the sibling nearest the leaf first.
 */
export function inclusionProof(leaves: readonly Uint8Array[], index: number): Buffer[] {
  checkLeaves(leaves, 'inclusionProof');
  const n = leaves.length;
  checkInteger(index, 'inclusionProof: index');
  if (index >= n) {
    throw new RangeError(`inclusionProof: index ${index} is out of range for a tree of ${n} leaves (valid: 0..${n - 1})`);
  }
  // Walk down from the root; each split contributes the root of the side the leaf is not on.
  const siblings: Node[] = [];
  let lo = 0;
  let hi = n;
  let m = index;
  while (hi - lo > 1) {
    const k = largestPowerOfTwoBelow(hi - lo);
    if (m < k) {
      siblings.push(rangeRoot(leaves, lo + k, hi));
      hi = lo + k;
    } else {
      siblings.push(rangeRoot(leaves, lo, lo + k));
      lo += k;
      m -= k;
    }
  }
  return siblings.reverse().map(toBuffer);
}

/**
 * §2.1.3.2: does `proof` show that `leaf` is the leaf hash at `index` in the tree of `treeSize` leaves
 * whose root is `root`? (Bind `treeSize` and `root` together, as a signed tree head does: for some indices
 * the same path verifies against several sizes, and it is the root that tells them apart.)
 */
export function verifyInclusion(leaf: Uint8Array, index: number, treeSize: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  checkInteger(index, 'verifyInclusion: index');
  checkInteger(treeSize, 'verifyInclusion: treeSize');
  checkProofArray(proof, 'verifyInclusion');
  if (!isHash(leaf) || !isHash(root) || !proof.every(isHash)) return false;
  // 1. The leaf must be in the tree.
  if (index >= treeSize) return false;
  // 2.-3.
  let fn = index;
  let sn = treeSize - 1;
  let r: Node | Uint8Array = leaf;
  // 4.
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = pair(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = pair(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  return sn === 0 && sameHash(r, root);
}

/**
 * PROOF(oldSize, D[n]) (§2.1.4.1): the hashes that show the tree over the first `oldSize` leaves is a
 * prefix of the tree over all of `leaves`. Empty when `oldSize` is 0 or n (nothing to prove beyond
 * comparing the roots).
 */
export function consistencyProof(leaves: readonly Uint8Array[], oldSize: number): Buffer[] {
  checkLeaves(leaves, 'consistencyProof');
  const n = leaves.length;
  checkInteger(oldSize, 'consistencyProof: oldSize');
  if (oldSize > n) {
    throw new RangeError(`consistencyProof: oldSize ${oldSize} is larger than the tree (${n} leaves)`);
  }
  if (oldSize === 0 || oldSize === n) return [];
  // SUBPROOF(m, D[lo:hi], b), unrolled: each step appends one subtree root, which in the proof comes after
  // everything the deeper steps contribute.
  const reversed: Node[] = [];
  let lo = 0;
  let hi = n;
  let m = oldSize;
  let whole = true; // b: is D[lo:lo+m] the entire old tree (whose root the verifier already has)?
  for (;;) {
    if (m === hi - lo) {
      if (!whole) reversed.push(rangeRoot(leaves, lo, hi));
      break;
    }
    const k = largestPowerOfTwoBelow(hi - lo);
    if (m <= k) {
      reversed.push(rangeRoot(leaves, lo + k, hi));
      hi = lo + k;
    } else {
      reversed.push(rangeRoot(leaves, lo, lo + k));
      lo += k;
      m -= k;
      whole = false;
    }
  }
  return reversed.reverse().map(toBuffer);
}

/**
 * §2.1.4.2: does `proof` show that the tree of `oldSize` leaves with root `oldRoot` is a prefix of the tree
 * of `newSize` leaves with root `newRoot`? Equal sizes are consistent exactly when the roots are equal and
 * the proof is empty; the empty tree is a prefix of every tree (empty proof, and `oldRoot` must be the
 * empty-tree root); a shrinking tree is never consistent.
 */
export function verifyConsistency(oldSize: number, newSize: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]): boolean {
  checkInteger(oldSize, 'verifyConsistency: oldSize');
  checkInteger(newSize, 'verifyConsistency: newSize');
  checkProofArray(proof, 'verifyConsistency');
  if (!isHash(oldRoot) || !isHash(newRoot) || !proof.every(isHash)) return false;
  if (oldSize > newSize) return false;
  if (oldSize === newSize) return proof.length === 0 && sameHash(oldRoot, newRoot);
  if (oldSize === 0) return proof.length === 0 && sameHash(EMPTY_ROOT, oldRoot);
  // 1.
  if (proof.length === 0) return false;
  // 2. A power-of-two old tree is a whole subtree of the new one, so its root starts the path.
  const path: readonly Uint8Array[] = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  // 3.
  let fn = oldSize - 1;
  let sn = newSize - 1;
  // 4.
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  let fr: Node | Uint8Array = path[0]!;
  let sr: Node | Uint8Array = path[0]!;
  // 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = pair(c, fr);
      sr = pair(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = pair(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7.
  return sn === 0 && sameHash(fr, oldRoot) && sameHash(sr, newRoot);
}

// ---------------------------------------------------------------------------------------------------------

/** `SHA-256(0x01 ‖ left ‖ right)` with both sides already known to be 32 bytes. */
function pair(left: Node | Uint8Array, right: Node | Uint8Array): Node {
  if (typeof left === 'string') scratch.write(left, 1, HASH_SIZE, 'binary');
  else scratch.set(left, 1);
  if (typeof right === 'string') scratch.write(right, 1 + HASH_SIZE, HASH_SIZE, 'binary');
  else scratch.set(right, 1 + HASH_SIZE);
  return hash('sha256', scratch, 'binary');
}

/** MTH(D[start:end]) over leaves already checked to be 32-byte hashes. */
function rangeRoot(leaves: readonly Uint8Array[], start: number, end: number): Node {
  const n = end - start;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return toNode(leaves[start]!);
  const level: Node[] = [];
  let i = start;
  for (; i + 1 < end; i += 2) level.push(pair(leaves[i]!, leaves[i + 1]!));
  if (i < end) level.push(toNode(leaves[i]!));
  let width = level.length;
  while (width > 1) {
    let out = 0;
    let j = 0;
    for (; j + 1 < width; j += 2) level[out++] = pair(level[j]!, level[j + 1]!);
    if (j < width) level[out++] = level[j]!;
    width = out;
  }
  return level[0]!;
}

function toNode(bytes: Uint8Array): Node {
  if (Buffer.isBuffer(bytes)) return bytes.toString('binary');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('binary');
}

function toBuffer(node: Node): Buffer {
  return Buffer.from(node, 'binary');
}

function sameHash(a: Node | Uint8Array, b: Node | Uint8Array): boolean {
  return (typeof a === 'string' ? a : toNode(a)) === (typeof b === 'string' ? b : toNode(b));
}

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.byteLength === HASH_SIZE;
}

function checkHash(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array or Buffer, got ${kindOf(value)}`);
  if (value.byteLength !== HASH_SIZE) {
    throw new RangeError(`${what} must be a ${HASH_SIZE}-byte SHA-256 hash, got ${value.byteLength} bytes`);
  }
}

function checkLeaves(leaves: readonly Uint8Array[], fn: string): void {
  if (!Array.isArray(leaves)) throw new TypeError(`${fn}: leaves must be an array of leaf hashes, got ${kindOf(leaves)}`);
  for (let i = 0; i < leaves.length; i++) checkHash(leaves[i], `${fn}: leaves[${i}]`);
}

function checkProofArray(proof: readonly Uint8Array[], fn: string): void {
  if (!Array.isArray(proof)) throw new TypeError(`${fn}: proof must be an array of hashes, got ${kindOf(proof)}`);
}

function checkInteger(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${typeof value === 'number' ? value : kindOf(value)}`);
  }
}

/** The largest power of two strictly less than n (n ≥ 2). Arithmetic, not bitwise: sizes may pass 2^31. */
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/** Right shift by one, for non-negative integers of any safe size. */
function half(n: number): number {
  return Math.floor(n / 2);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
}
