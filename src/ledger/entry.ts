import { canonicalize } from './canonical.ts';
import { chainOf, leafOf, sha256Hex } from './hash.ts';

/** What callers append. The payload is free-form JSON; personal free text goes in `personal`. */
export interface LedgerInput {
  kind: string;
  /** Who caused it: an admin id, a client id, or `system`. */
  actor: string;
  payload: Record<string, unknown>;
  /**
   * Personal data (intents, event summaries, decision context with user claims): kept in an erasable
   * table, while the hashed payload carries only each value's SHA-256, so erasure leaves the chain whole.
   */
  personal?: Record<string, unknown>;
}

/** A row of ledger_entries as it is written. */
export interface SealedEntry {
  seq: number;
  at: Date;
  kind: string;
  actor: string;
  client_id: string | null;
  subject: string | null;
  task: string | null;
  jti: string | null;
  decision: string | null;
  payload: Buffer;
  leaf_hash: Buffer;
  chain_hash: Buffer;
}

export interface PersonalRow { hash: string; value: string }

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The columns queries filter on; derived from the payload, and checked against it by verify. */
export function indexColumns(body: Record<string, unknown>): Pick<SealedEntry, 'client_id' | 'subject' | 'task' | 'jti' | 'decision'> {
  const user = body.user as { sub?: unknown } | undefined;
  return {
    client_id: str(body.client_id),
    subject: str(user?.sub),
    task: str(body.task),
    jti: str(body.jti),
    decision: str(body.decision),
  };
}

/** An entry with everything that does not depend on its place in the chain computed: done once per entry. */
export interface PreparedEntry {
  kind: string;
  actor: string;
  body: Record<string, unknown>;
  /** The body's canonical JSON (RFC 8785). */
  bodyJson: string;
  personal: PersonalRow[];
}

/**
 * Splits off the personal values (each kept as its canonical JSON text, the body carrying its SHA-256) and
 * canonicalises the body. Throws a TypeError for anything that is not JSON, in the payload or in a
 * personal value, so a bad entry fails alone, before it joins a batch.
 */
export function prepare(input: LedgerInput): PreparedEntry {
  const personal: PersonalRow[] = [];
  const refs: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.personal ?? {})) {
    if (value === undefined) continue;
    // Kept as its canonical JSON: one pass that also refuses what JSON.stringify would silently change.
    const text = canonicalize(value);
    const hash = sha256Hex(text);
    personal.push({ hash, value: text });
    refs[`${name}_sha256`] = hash;
  }
  const body = { ...input.payload, ...refs };
  return { kind: input.kind, actor: input.actor, body, bodyJson: canonicalize(body), personal };
}

const isPrepared = (e: LedgerInput | PreparedEntry): e is PreparedEntry => typeof (e as PreparedEntry).bodyJson === 'string';

/**
 * Seals one entry after `previous`: the canonical payload (RFC 8785) includes seq, time, kind and actor,
 * so none of them can change without changing the leaf hash. The payload is
 * canonicalize({ seq, at, kind, actor, body }), assembled around the body's canonical JSON: the members
 * in their canonical order (actor, at, body, kind, seq).
 */
export function seal(input: LedgerInput | PreparedEntry, seq: number, at: Date, previous: Buffer): { entry: SealedEntry; personal: PersonalRow[] } {
  const p = isPrepared(input) ? input : prepare(input);
  const text = `{"actor":${canonicalize(p.actor)},"at":${canonicalize(at.toISOString())},"body":${p.bodyJson},"kind":${canonicalize(p.kind)},"seq":${canonicalize(seq)}}`;
  const payload = Buffer.from(text, 'utf8');
  const leaf = leafOf(payload);
  return {
    entry: { seq, at, kind: p.kind, actor: p.actor, ...indexColumns(p.body), payload, leaf_hash: leaf, chain_hash: chainOf(previous, leaf) },
    personal: p.personal,
  };
}
