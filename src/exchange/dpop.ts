import { DpopProofError, dpopHeader, verifyDpopProof } from '../../packages/resource/src/protocol/dpop_proof.ts';
import type { Db } from '../store/db.ts';
import { namedQuery } from '../store/prepared.ts';
import { rethrowAsStorageFailure } from '../store/errors.ts';
import { ExchangeError } from './errors.ts';

/** The tables src/exchange owns: no other folder queries them (test/foundation/table_owners.test.ts). */
export const OWNED_TABLES = ['dpop_proofs'] as const;

export interface SenderDeps {
  db: Db;
  /** The token endpoint's URL, which a proof's `htu` must name. */
  tokenUrl: string;
  maxAge: number;
  clockSkew: number;
}

export interface SenderInput {
  /** The request's DPoP header(s), as Node parsed them. */
  header: string | string[] | undefined;
  /** `cnf.jkt` of the subject and actor tokens, when they are DPoP-bound. */
  subjectJkt: string | undefined;
  actorJkt: string | undefined;
  /**
   * The subject is a delegation token addressed to this client: it was bound by the delegating agent,
   * whose key the delegate does not hold. The delegate proves possession of its own key instead (client
   * authentication already ties the token to it), and the new token stays bound: never to Bearer.
   */
  delegated: boolean;
}

const invalidProof = (d: string) => new ExchangeError('invalid_dpop_proof', d);

/**
 * RFC 9449 for the exchange grant, which oidc-provider leaves alone: returns the key the new token is
 * bound to (`cnf.jkt`), or undefined for a Bearer token. A bound subject or actor token is only
 * exchanged with a proof made by its key, or a stolen token could be rebound to the thief's key.
 */
export async function senderKey(deps: SenderDeps, input: SenderInput): Promise<string | undefined> {
  let proof: string | undefined;
  try {
    proof = dpopHeader(input.header);
  } catch (err) {
    throw invalidProof((err as Error).message);
  }
  const { actorJkt } = input;
  const subjectJkt = input.delegated ? undefined : input.subjectJkt;
  if (subjectJkt && actorJkt && subjectJkt !== actorJkt) {
    throw invalidProof('subject_token and actor_token are bound to different DPoP keys; one proof cannot be made by both');
  }
  // The key the proof must be made with, when a presented token names one.
  const required = subjectJkt ?? actorJkt;
  if (proof === undefined) {
    if (input.subjectJkt || actorJkt) {
      throw invalidProof(`${input.subjectJkt ? 'subject_token' : 'actor_token'} is DPoP-bound (cnf.jkt); send a DPoP proof made with ${required ? 'its key' : 'your own key'}`);
    }
    return undefined;
  }
  return acceptProof(deps, proof, required);
}

/**
 * One proof for POST at the token endpoint: checked (made by `jkt` when given) and recorded as used,
 * once across every process sharing the database. Returns the proof key's thumbprint.
 */
export async function acceptProof(deps: SenderDeps, proof: string, jkt?: string): Promise<string> {
  let verified;
  try {
    verified = await verifyDpopProof(proof, { method: 'POST', url: deps.tokenUrl, maxAge: deps.maxAge, clockSkew: deps.clockSkew, ...(jkt ? { jkt } : {}) });
  } catch (err) {
    if (err instanceof DpopProofError) throw invalidProof(err.message);
    throw err;
  }
  // The primary key decides. Kept one clock skew longer than it is acceptable, so a peer whose clock
  // runs ahead does not sweep it early.
  const expiresAt = new Date((verified.iat + deps.maxAge + 2 * deps.clockSkew) * 1000);
  // A named statement: one per DPoP request, so knex's query building is worth skipping.
  const inserted = await namedQuery(deps.db, 'dpop_proof_record',
    'insert into dpop_proofs (jkt, jti, expires_at) values ($1, $2, $3) on conflict (jkt, jti) do nothing returning jti',
    [verified.jkt, verified.jti, expiresAt])
    .catch(rethrowAsStorageFailure);
  if (inserted.length === 0) throw invalidProof('DPoP proof has been used before (replay); make a new proof for every request');
  return verified.jkt;
}

/** Proofs too old to be accepted again need no replay record. */
export async function sweepDpopProofs(db: Db): Promise<number> {
  const rows = await db('dpop_proofs').where('expires_at', '<', new Date()).delete().returning('jti');
  return rows.length;
}
