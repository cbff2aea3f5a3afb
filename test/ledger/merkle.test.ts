import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  HASH_SIZE,
  MerkleAccumulator,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rootFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from '../../src/ledger/merkle.ts';

// ---- A reference written straight from the recursive definitions of RFC 9162 §2.1, sharing no code with
// ---- the module: plain createHash over concatenations, recursion instead of loops.

const sha256 = (...parts: Uint8Array[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest();
const H = (left: Buffer, right: Buffer): Buffer => sha256(Buffer.from([1]), left, right);
/** The largest power of two smaller than n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function refMTH(d: Buffer[]): Buffer {
  if (d.length === 0) return sha256();
  if (d.length === 1) return d[0]!;
  const k = split(d.length);
  return H(refMTH(d.slice(0, k)), refMTH(d.slice(k)));
}
function refPATH(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const k = split(d.length);
  return m < k ? [...refPATH(m, d.slice(0, k)), refMTH(d.slice(k))] : [...refPATH(m - k, d.slice(k)), refMTH(d.slice(0, k))];
}
function refSUBPROOF(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [refMTH(d)];
  const k = split(d.length);
  return m <= k
    ? [...refSUBPROOF(m, d.slice(0, k), b), refMTH(d.slice(k))]
    : [...refSUBPROOF(m - k, d.slice(k), false), refMTH(d.slice(0, k))];
}
const refPROOF = (m: number, d: Buffer[]): Buffer[] => refSUBPROOF(m, d, true);

/**
 * The shape of the computation a verifier performs, from the same recursive definitions, with proof
 * elements as placeholders P0, P1, … (leaf-first order), the leaf as L and a known old root as OLD. Two
 * (index, size) or (old, new) claims that give the same formula are indistinguishable to any verifier
 * that sees only the proof and the roots; different formulas must not both verify (barring collisions).
 */
function inclusionFormula(m: number, n: number): string {
  if (m >= n) return `out of range`;
  const go = (i: number, size: number): { expr: string; used: number } => {
    if (size === 1) return { expr: 'L', used: 0 };
    const k = split(size);
    if (i < k) {
      const inner = go(i, k);
      return { expr: `(${inner.expr} P${inner.used})`, used: inner.used + 1 };
    }
    const inner = go(i - k, size - k);
    return { expr: `(P${inner.used} ${inner.expr})`, used: inner.used + 1 };
  };
  const { expr, used } = go(m, n);
  return `${expr}/${used}`;
}
function consistencyFormula(m: number, n: number): string {
  // [old-root formula, new-root formula, number of proof elements]
  const go = (mm: number, size: number, b: boolean): { old: string; root: string; used: number } => {
    if (mm === size) return b ? { old: 'OLD', root: 'OLD', used: 0 } : { old: 'P0', root: 'P0', used: 1 };
    const k = split(size);
    if (mm <= k) {
      const inner = go(mm, k, b);
      return { old: inner.old, root: `(${inner.root} P${inner.used})`, used: inner.used + 1 };
    }
    const inner = go(mm - k, size - k, false);
    const p = `P${inner.used}`;
    return { old: `(${p} ${inner.old})`, root: `(${p} ${inner.root})`, used: inner.used + 1 };
  };
  const { old, root, used } = go(m, n, true);
  return `${old}|${root}|${used}`;
}

// ---- helpers

const leavesOf = (n: number, salt = 'leaf'): Buffer[] => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`${salt} ${i}`)));
const flip = (b: Buffer, at = 0): Buffer => {
  const c = Buffer.from(b);
  c[((at % c.length) + c.length) % c.length]! ^= 0x01;
  return c;
};
const hex = (b: Buffer[]): string[] => b.map((x) => x.toString('hex'));

// Leaves for every tree size used below, and their roots, computed once with the reference.
const ALL = leavesOf(80);
const REF_ROOTS = Array.from({ length: 81 }, (_, n) => refMTH(ALL.slice(0, n)));

describe('hashing primitives', () => {
  it('uses SHA-256 with the RFC 9162 domain-separation prefixes', () => {
    expect(HASH_SIZE).toBe(32);
    // The empty tree, and the leaf hash of the empty entry: SHA-256("") and SHA-256(0x00).
    expect(rootFromLeaves([]).toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(new MerkleAccumulator().root().toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(leafHash(new Uint8Array(0)).toString('hex')).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    const data = Buffer.from('entry');
    expect(leafHash(data).equals(sha256(Buffer.from([0]), data))).toBe(true);
    const [a, b] = [leafHash(Buffer.from('a')), leafHash(Buffer.from('b'))] as [Buffer, Buffer];
    expect(nodeHash(a, b).equals(sha256(Buffer.from([1]), a, b))).toBe(true);
    expect(nodeHash(a, b).equals(nodeHash(b, a))).toBe(false);
  });

  it('a single leaf is its own root', () => {
    expect(rootFromLeaves([ALL[0]!]).equals(ALL[0]!)).toBe(true);
  });

  it('refuses malformed hashes', () => {
    expect(() => nodeHash(Buffer.alloc(31), ALL[0]!)).toThrow(RangeError);
    expect(() => nodeHash(Buffer.alloc(31), ALL[0]!)).toThrow('nodeHash: left must be a 32-byte SHA-256 hash, got 31 bytes');
    expect(() => nodeHash(ALL[0]!, 'x' as unknown as Buffer)).toThrow(TypeError);
    expect(() => leafHash('x' as unknown as Buffer)).toThrow(TypeError);
    expect(() => rootFromLeaves([ALL[0]!, Buffer.alloc(33)])).toThrow('rootFromLeaves: leaves[1] must be a 32-byte SHA-256 hash, got 33 bytes');
    expect(() => rootFromLeaves([ALL[0]!, null as unknown as Buffer])).toThrow(TypeError);
  });
});

describe('RFC 9162 §2.1.5 worked example (seven leaves)', () => {
  //             hash
  //            /    \
  //           k      l
  //          / \    / \
  //         g   h  i   j
  //        / \ / \ / \  |
  //        a b c d e f  d6
  const d = leavesOf(7, 'd');
  const [a, b, c, dd, e, f, j] = d as [Buffer, Buffer, Buffer, Buffer, Buffer, Buffer, Buffer];
  const g = H(a, b);
  const h = H(c, dd);
  const i = H(e, f);
  const k = H(g, h);
  const l = H(i, j);
  const root = H(k, l);
  const hash0 = H(g, c); // three leaves
  const hash1 = k; // four leaves
  const hash2 = H(k, i); // six leaves

  it('computes the roots of the tree as it grows', () => {
    expect(rootFromLeaves(d).equals(root)).toBe(true);
    expect(rootFromLeaves(d.slice(0, 3)).equals(hash0)).toBe(true);
    expect(rootFromLeaves(d.slice(0, 4)).equals(hash1)).toBe(true);
    expect(rootFromLeaves(d.slice(0, 6)).equals(hash2)).toBe(true);
  });

  it.each([
    [0, [b, h, l]],
    [3, [c, g, l]],
    [4, [f, j, k]],
    [6, [i, k]],
  ] as [number, Buffer[]][])('the audit path for d%i', (index, expected) => {
    const proof = inclusionProof(d, index);
    expect(hex(proof)).toEqual(hex(expected));
    expect(verifyInclusion(d[index]!, index, 7, proof, root)).toBe(true);
  });

  it.each([
    [3, hash0, [c, dd, g, l]],
    [4, hash1, [l]],
    [6, hash2, [i, j, k]],
  ] as [number, Buffer, Buffer[]][])('the consistency proof from %i leaves to 7', (m, oldRoot, expected) => {
    const proof = consistencyProof(d, m);
    expect(hex(proof)).toEqual(hex(expected));
    expect(verifyConsistency(m, 7, oldRoot, root, proof)).toBe(true);
  });
});

describe('tree hash', () => {
  it('rootFromLeaves equals the recursive MTH for every size 0..300', () => {
    const leaves = leavesOf(300, 'mth');
    for (let n = 0; n <= 300; n++) {
      expect(rootFromLeaves(leaves.slice(0, n)).toString('hex'), `n=${n}`).toBe(refMTH(leaves.slice(0, n)).toString('hex'));
    }
  });

  it('the accumulator equals rootFromLeaves after every push, sizes 0..300', () => {
    const leaves = leavesOf(300, 'acc');
    const acc = new MerkleAccumulator();
    expect(acc.size).toBe(0);
    expect(acc.root().equals(rootFromLeaves([]))).toBe(true);
    for (let n = 1; n <= 300; n++) {
      acc.push(leaves[n - 1]!);
      expect(acc.size).toBe(n);
      expect(acc.root().toString('hex'), `n=${n}`).toBe(rootFromLeaves(leaves.slice(0, n)).toString('hex'));
    }
  });

  it('the accumulator copies what it keeps: reusing the caller’s buffer does not change the root', () => {
    const leaves = leavesOf(5, 'reuse');
    const scratch = Buffer.alloc(32);
    const acc = new MerkleAccumulator();
    for (const leaf of leaves) {
      leaf.copy(scratch);
      acc.push(scratch);
      scratch.fill(0xaa);
      expect(acc.root().equals(rootFromLeaves(leaves.slice(0, acc.size)))).toBe(true);
    }
    // A Uint8Array view into a larger buffer works too.
    const big = Buffer.concat([Buffer.alloc(7), leaves[0]!, Buffer.alloc(9)]);
    const one = new MerkleAccumulator();
    one.push(new Uint8Array(big.buffer, big.byteOffset + 7, 32));
    expect(one.root().equals(leaves[0]!)).toBe(true);
  });

  it('the accumulator refuses a malformed leaf and stays as it was', () => {
    const acc = new MerkleAccumulator();
    acc.push(ALL[0]!);
    expect(() => acc.push(Buffer.alloc(16))).toThrow('MerkleAccumulator.push: leaf must be a 32-byte SHA-256 hash, got 16 bytes');
    expect(() => acc.push('nope' as unknown as Buffer)).toThrow(TypeError);
    expect(acc.size).toBe(1);
    acc.push(ALL[1]!);
    expect(acc.root().equals(REF_ROOTS[2]!)).toBe(true);
  });

  it('the returned buffers are the caller’s to modify', () => {
    const root = rootFromLeaves(ALL.slice(0, 5));
    root.fill(0);
    expect(rootFromLeaves(ALL.slice(0, 5)).equals(REF_ROOTS[5]!)).toBe(true);
    const single = rootFromLeaves([ALL[0]!]);
    single.fill(0);
    expect(ALL[0]!.equals(REF_ROOTS[1]!)).toBe(true);
  });

  it('handles a million leaves (timing printed, not asserted)', { timeout: 180_000 }, () => {
    const n = 1_000_000;
    const old = 777_777;
    const pool = randomBytes(n * 32);
    const leaves = Array.from({ length: n }, (_, i) => pool.subarray(i * 32, i * 32 + 32));
    let t = performance.now();
    const root = rootFromLeaves(leaves);
    const batchMs = performance.now() - t;
    t = performance.now();
    const acc = new MerkleAccumulator();
    let oldRoot: Buffer = Buffer.alloc(0);
    for (const leaf of leaves) {
      acc.push(leaf);
      if (acc.size === old) oldRoot = acc.root();
    }
    const streamed = acc.root();
    const streamMs = performance.now() - t;
    console.log(`1,000,000 leaves: rootFromLeaves ${batchMs.toFixed(0)} ms, MerkleAccumulator ${streamMs.toFixed(0)} ms`);
    expect(streamed.equals(root)).toBe(true);
    // One proof of each kind on the big tree (each costs about n hashes: no interior nodes are stored).
    expect(verifyInclusion(leaves[524_288]!, 524_288, n, inclusionProof(leaves, 524_288), root)).toBe(true);
    expect(verifyConsistency(old, n, oldRoot, root, consistencyProof(leaves, old))).toBe(true);
  });
});

describe('inclusion proofs, every index of every tree size 1..70', () => {
  it('match PATH, verify, and fail for a wrong leaf, root, element, length, index or size', () => {
    let ambiguousSizes = 0;
    let rejectedSizes = 0;
    for (let n = 1; n <= 70; n++) {
      const leaves = ALL.slice(0, n);
      const root = REF_ROOTS[n]!;
      for (let i = 0; i < n; i++) {
        const at = `n=${n} i=${i}`;
        const leaf = leaves[i]!;
        const proof = inclusionProof(leaves, i);
        expect(hex(proof), at).toEqual(hex(refPATH(i, leaves)));
        expect(verifyInclusion(leaf, i, n, proof, root), at).toBe(true);

        // Wrong leaf or root.
        expect(verifyInclusion(flip(leaf, i), i, n, proof, root), at).toBe(false);
        if (n > 1) expect(verifyInclusion(leaves[(i + 1) % n]!, i, n, proof, root), at).toBe(false);
        expect(verifyInclusion(leaf, i, n, proof, flip(root, 31 - i)), at).toBe(false);
        expect(verifyInclusion(leaf, i, n, proof, REF_ROOTS[n + 1]!), at).toBe(false);
        if (n > 1) expect(verifyInclusion(leaf, i, n, proof, REF_ROOTS[n - 1]!), at).toBe(false);
        // Any element altered, dropped, or one added.
        for (let p = 0; p < proof.length; p++) {
          const tampered = proof.map((x, q) => (q === p ? flip(x, i + p) : x));
          expect(verifyInclusion(leaf, i, n, tampered, root), `${at} flip ${p}`).toBe(false);
          expect(verifyInclusion(leaf, i, n, proof.toSpliced(p, 1), root), `${at} drop ${p}`).toBe(false);
        }
        expect(verifyInclusion(leaf, i, n, [...proof, root], root), at).toBe(false);
        expect(verifyInclusion(leaf, i, n, [...proof, leaf], root), at).toBe(false);
        expect(verifyInclusion(leaf, i, n, [leaf, ...proof], root), at).toBe(false);
        // Another index, with this leaf or with that index's own leaf.
        for (const j of [i - 2, i - 1, i + 1, i + 2, 0, n - 1, n, n + 3]) {
          if (j === i || j < 0) continue;
          expect(verifyInclusion(leaf, j, n, proof, root), `${at} j=${j}`).toBe(false);
          if (j < n) expect(verifyInclusion(leaves[j]!, j, n, proof, root), `${at} j=${j}`).toBe(false);
        }
        // Another size: passes exactly when the verifier would compute the same formula (the RFC's
        // algorithm does not bind the size on its own; a signed tree head binds it to the root).
        for (const size of [i, n - 1, n + 1, n + 2, 2 * n, 2 * n + 1]) {
          if (size === n || size < 0) continue;
          const same = inclusionFormula(i, size) === inclusionFormula(i, n);
          expect(verifyInclusion(leaf, i, size, proof, root), `${at} size=${size}`).toBe(same);
          if (same) ambiguousSizes++;
          else rejectedSizes++;
        }
      }
    }
    // Both outcomes occur, so the size checks above are not vacuous either way.
    expect(ambiguousSizes).toBeGreaterThan(0);
    expect(rejectedSizes).toBeGreaterThan(ambiguousSizes);
  });

  it('verify under another (index, size) claim exactly when the verifier computes the same formula (sizes ≤ 16, all claims)', () => {
    let passed = 0;
    for (let n = 1; n <= 16; n++) {
      const leaves = ALL.slice(0, n);
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(leaves, i);
        const formula = inclusionFormula(i, n);
        for (let n2 = 1; n2 <= 2 * n + 1; n2++) {
          for (let i2 = 0; i2 <= n2; i2++) {
            const same = inclusionFormula(i2, n2) === formula;
            expect(verifyInclusion(leaves[i]!, i2, n2, proof, REF_ROOTS[n]!), `(${i}, ${n}) claimed as (${i2}, ${n2})`).toBe(same);
            if (same) passed++;
          }
        }
      }
    }
    expect(passed).toBeGreaterThan(136); // more than the true claims alone
  });

  it('fail for malformed proof elements rather than throwing', () => {
    const leaves = ALL.slice(0, 9);
    const proof = inclusionProof(leaves, 4);
    const root = REF_ROOTS[9]!;
    expect(verifyInclusion(leaves[4]!, 4, 9, [...proof.slice(0, -1), proof.at(-1)!.subarray(0, 31)], root)).toBe(false);
    expect(verifyInclusion(leaves[4]!, 4, 9, [...proof.slice(0, -1), 'x' as unknown as Buffer], root)).toBe(false);
    expect(verifyInclusion(leaves[4]!.subarray(1), 4, 9, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[4]!, 4, 9, proof, root.subarray(1))).toBe(false);
    // A tree of one leaf: the proof is empty, and the root is the leaf.
    expect(inclusionProof([ALL[0]!], 0)).toEqual([]);
    expect(verifyInclusion(ALL[0]!, 0, 1, [], ALL[0]!)).toBe(true);
    expect(verifyInclusion(ALL[0]!, 0, 0, [], ALL[0]!)).toBe(false);
  });

  it('throw RangeError for an index out of range', () => {
    const leaves = ALL.slice(0, 5);
    expect(() => inclusionProof(leaves, 5)).toThrow(RangeError);
    expect(() => inclusionProof(leaves, 5)).toThrow('inclusionProof: index 5 is out of range for a tree of 5 leaves (valid: 0..4)');
    expect(() => inclusionProof([], 0)).toThrow(RangeError);
    expect(() => inclusionProof(leaves, -1)).toThrow('inclusionProof: index must be a non-negative safe integer, got -1');
    expect(() => inclusionProof(leaves, 1.5)).toThrow(RangeError);
    expect(() => inclusionProof(leaves, Number.NaN)).toThrow(RangeError);
    expect(() => verifyInclusion(leaves[0]!, -1, 5, [], REF_ROOTS[5]!)).toThrow('verifyInclusion: index must be a non-negative safe integer, got -1');
    expect(() => verifyInclusion(leaves[0]!, 0, 2 ** 53, [], REF_ROOTS[5]!)).toThrow(RangeError);
    expect(() => verifyInclusion(leaves[0]!, 0, 5, null as unknown as Buffer[], REF_ROOTS[5]!)).toThrow(TypeError);
  });
});

describe('consistency proofs, every (m, n) with 0 ≤ m ≤ n ≤ 40', () => {
  it('match PROOF, verify, and fail when tampered with', () => {
    let ambiguousSizes = 0;
    let rejectedSizes = 0;
    for (let n = 1; n <= 40; n++) {
      const leaves = ALL.slice(0, n);
      const newRoot = REF_ROOTS[n]!;
      for (let m = 0; m <= n; m++) {
        const at = `m=${m} n=${n}`;
        const oldRoot = REF_ROOTS[m]!;
        const proof = consistencyProof(leaves, m);
        expect(hex(proof), at).toEqual(m === 0 || m === n ? [] : hex(refPROOF(m, leaves)));
        expect(verifyConsistency(m, n, oldRoot, newRoot, proof), at).toBe(true);

        // Wrong roots.
        expect(verifyConsistency(m, n, flip(oldRoot, m), newRoot, proof), at).toBe(false);
        // (The empty tree is a prefix of every tree, so with m = 0 any new root is consistent.)
        expect(verifyConsistency(m, n, oldRoot, flip(newRoot, n), proof), at).toBe(m === 0);
        expect(verifyConsistency(m, n, oldRoot, REF_ROOTS[n + 1]!, proof), at).toBe(m === 0);
        if (m > 0) expect(verifyConsistency(m, n, REF_ROOTS[m - 1]!, newRoot, proof), at).toBe(false);
        if (m < n) expect(verifyConsistency(m, n, REF_ROOTS[m + 1]!, newRoot, proof), at).toBe(false);
        if (m < n) expect(verifyConsistency(m, n, newRoot, oldRoot, proof), at).toBe(false);
        // A tree whose first m leaves differ is not an extension of this one.
        if (m > 0) {
          const forked = [...leaves];
          forked[m - 1] = flip(forked[m - 1]!);
          const forkedRoot = rootFromLeaves(forked);
          expect(verifyConsistency(m, n, oldRoot, forkedRoot, proof), at).toBe(false);
          expect(verifyConsistency(m, n, oldRoot, forkedRoot, consistencyProof(forked, m)), at).toBe(false);
        }
        // Any element altered, dropped, or one added.
        for (let p = 0; p < proof.length; p++) {
          const tampered = proof.map((x, q) => (q === p ? flip(x, m + p) : x));
          expect(verifyConsistency(m, n, oldRoot, newRoot, tampered), `${at} flip ${p}`).toBe(false);
          expect(verifyConsistency(m, n, oldRoot, newRoot, proof.toSpliced(p, 1)), `${at} drop ${p}`).toBe(false);
        }
        expect(verifyConsistency(m, n, oldRoot, newRoot, [...proof, newRoot]), at).toBe(false);
        expect(verifyConsistency(m, n, oldRoot, newRoot, [oldRoot, ...proof]), at).toBe(false);
        // Other sizes with the same proof and roots: pass exactly when the verifier's formula is the same.
        if (m > 0 && m < n) {
          for (const [m2, n2] of [[m - 1, n], [m + 1, n], [m, n - 1], [m, n + 1], [m, n + 2], [m + 1, n + 1], [m, 2 * n]] as [number, number][]) {
            if (m2 <= 0 || m2 >= n2) continue;
            const same = consistencyFormula(m2, n2) === consistencyFormula(m, n);
            expect(verifyConsistency(m2, n2, oldRoot, newRoot, proof), `${at} as m=${m2} n=${n2}`).toBe(same);
            if (same) ambiguousSizes++;
            else rejectedSizes++;
          }
        }
      }
    }
    expect(ambiguousSizes).toBeGreaterThan(0);
    expect(rejectedSizes).toBeGreaterThan(ambiguousSizes);
  });

  it('verify under another (old, new) size claim exactly when the verifier computes the same formula (sizes ≤ 12, all claims)', () => {
    let passed = 0;
    let pairs = 0;
    for (let n = 2; n <= 12; n++) {
      for (let m = 1; m < n; m++) {
        pairs++;
        const proof = consistencyProof(ALL.slice(0, n), m);
        const formula = consistencyFormula(m, n);
        for (let n2 = 2; n2 <= 2 * n + 1; n2++) {
          for (let m2 = 1; m2 < n2; m2++) {
            const same = consistencyFormula(m2, n2) === formula;
            expect(verifyConsistency(m2, n2, REF_ROOTS[m]!, REF_ROOTS[n]!, proof), `(${m}, ${n}) claimed as (${m2}, ${n2})`).toBe(same);
            if (same) passed++;
          }
        }
      }
    }
    expect(passed).toBeGreaterThan(pairs);
  });

  it('treat the edge cases as the definitions imply', () => {
    const leaves = ALL.slice(0, 6);
    const empty = rootFromLeaves([]);
    // Equal sizes: consistent exactly when the roots are equal and there is nothing in the proof.
    expect(verifyConsistency(6, 6, REF_ROOTS[6]!, REF_ROOTS[6]!, [])).toBe(true);
    expect(verifyConsistency(6, 6, REF_ROOTS[6]!, REF_ROOTS[5]!, [])).toBe(false);
    expect(verifyConsistency(6, 6, REF_ROOTS[6]!, REF_ROOTS[6]!, [ALL[0]!])).toBe(false);
    // The empty tree is a prefix of every tree.
    expect(verifyConsistency(0, 6, empty, REF_ROOTS[6]!, [])).toBe(true);
    expect(verifyConsistency(0, 0, empty, empty, [])).toBe(true);
    expect(verifyConsistency(0, 6, REF_ROOTS[1]!, REF_ROOTS[6]!, [])).toBe(false);
    expect(verifyConsistency(0, 6, empty, REF_ROOTS[6]!, [ALL[0]!])).toBe(false);
    // A tree never shrinks.
    expect(verifyConsistency(6, 5, REF_ROOTS[6]!, REF_ROOTS[5]!, consistencyProof(leaves, 5))).toBe(false);
    // A non-empty proof is required between different non-zero sizes (step 1).
    expect(verifyConsistency(3, 6, REF_ROOTS[3]!, REF_ROOTS[6]!, [])).toBe(false);
    // Malformed elements fail rather than throw.
    const proof = consistencyProof(leaves, 3);
    expect(verifyConsistency(3, 6, REF_ROOTS[3]!, REF_ROOTS[6]!, [proof[0]!.subarray(0, 16), ...proof.slice(1)])).toBe(false);
    expect(verifyConsistency(3, 6, REF_ROOTS[3]!.subarray(0, 16), REF_ROOTS[6]!, proof)).toBe(false);
    // The caller's proof array is not modified when the old root is prepended (power-of-two old size).
    const fromFour = consistencyProof(leaves, 4);
    const copy = [...fromFour];
    expect(verifyConsistency(4, 6, REF_ROOTS[4]!, REF_ROOTS[6]!, fromFour)).toBe(true);
    expect(fromFour).toEqual(copy);
  });

  it('throw RangeError for sizes out of range', () => {
    const leaves = ALL.slice(0, 5);
    expect(() => consistencyProof(leaves, 6)).toThrow(RangeError);
    expect(() => consistencyProof(leaves, 6)).toThrow('consistencyProof: oldSize 6 is larger than the tree (5 leaves)');
    expect(() => consistencyProof(leaves, -1)).toThrow('consistencyProof: oldSize must be a non-negative safe integer, got -1');
    expect(() => consistencyProof(leaves, 2.5)).toThrow(RangeError);
    expect(() => verifyConsistency(-1, 5, REF_ROOTS[1]!, REF_ROOTS[5]!, [])).toThrow('verifyConsistency: oldSize must be a non-negative safe integer, got -1');
    expect(() => verifyConsistency(1, Number.POSITIVE_INFINITY, REF_ROOTS[1]!, REF_ROOTS[5]!, [])).toThrow(RangeError);
    expect(() => verifyConsistency(1, 5, REF_ROOTS[1]!, REF_ROOTS[5]!, 'x' as unknown as Buffer[])).toThrow(TypeError);
    expect(() => consistencyProof([ALL[0]!, Buffer.alloc(1)], 1)).toThrow('consistencyProof: leaves[1] must be a 32-byte SHA-256 hash, got 1 bytes');
  });

  it('work on a larger tree at sizes that cross several powers of two', () => {
    const leaves = leavesOf(1500, 'big');
    const roots = new Map<number, Buffer>();
    const acc = new MerkleAccumulator();
    const sizes = new Set([1, 2, 3, 255, 256, 257, 511, 512, 513, 1000, 1023, 1024, 1025, 1499, 1500]);
    for (const leaf of leaves) {
      acc.push(leaf);
      if (sizes.has(acc.size)) roots.set(acc.size, acc.root());
    }
    for (const m of sizes) {
      for (const n of sizes) {
        if (m > n) continue;
        const proof = consistencyProof(leaves.slice(0, n), m);
        expect(verifyConsistency(m, n, roots.get(m)!, roots.get(n)!, proof), `m=${m} n=${n}`).toBe(true);
      }
      for (const i of [0, m - 1, Math.floor(m / 2)]) {
        expect(verifyInclusion(leaves[i]!, i, m, inclusionProof(leaves.slice(0, m), i), roots.get(m)!), `i=${i} m=${m}`).toBe(true);
      }
    }
  });
});
