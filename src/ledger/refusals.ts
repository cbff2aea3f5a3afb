import { decodeJwt, decodeProtectedHeader } from 'jose';
import { sha256Hex } from './hash.ts';
import type { LedgerWriter } from './writer.ts';

/**
 * Answers that are refusals of an authenticated client's request, and so recorded: 400 and 403. Not a
 * refusal: `authorization_pending` and `slow_down` (keep polling), 401 (failed client authentication,
 * counted in bounded form instead: auth_failures.ts), 429 (rate limits) and 5xx (nothing was decided).
 */
export function isRefusal(status: number, error: unknown): error is string {
  return (status === 400 || status === 403) && typeof error === 'string' && error !== 'authorization_pending' && error !== 'slow_down';
}

/**
 * Text that came with or from a request, as the ledger keeps it: printable ASCII only (anything else,
 * controls and bidirectional overrides included, becomes `?`), at most `max` characters. Nothing a
 * caller sends reaches the ledger raw.
 */
export function ledgerText(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  const clean = value.slice(0, max + 1).replace(/[^\x20-\x7E]/g, '?');
  return clean.length > max ? `${clean.slice(0, max - 3)}...` : clean;
}

/** A presented token as a refusal records it: never the token, only its hash and what it claims to be. */
export interface PresentedToken {
  sha256: string;
  /** `jws`, `jwe` (five parts) or `other`. */
  form: 'jws' | 'jwe' | 'other';
  alg?: string;
  kid?: string;
  typ?: string;
  /** The issuer the token names, unverified: which issuer it claimed to come from. */
  iss?: string;
}

export function presentedToken(token: unknown): PresentedToken | undefined {
  if (typeof token !== 'string' || token === '') return undefined;
  const parts = token.split('.').length;
  const out: PresentedToken = { sha256: sha256Hex(token), form: parts === 3 ? 'jws' : parts === 5 ? 'jwe' : 'other' };
  if (out.form === 'other') return out;
  try {
    const h = decodeProtectedHeader(token);
    out.alg = ledgerText(h.alg, 32);
    out.kid = ledgerText(h.kid, 128);
    out.typ = ledgerText(h.typ, 64);
  } catch {
    // Not a readable header: the hash says which token it was.
  }
  if (out.form === 'jws') {
    try {
      out.iss = ledgerText(decodeJwt(token).iss, 256);
    } catch {
      // Unreadable claims, same.
    }
  }
  return out;
}

/** One refused request of an authenticated client. */
export interface Refusal {
  endpoint: 'token' | 'introspection' | 'revocation';
  client_id: string;
  grant_type?: string;
  error: string;
  error_description: string;
  /** The user, when the subject token was authenticated before the refusal. */
  user?: { issuer: string; sub: string };
  /** The resource or audience asked for, once the request was parsed. */
  target?: string;
  subject_token?: PresentedToken;
  actor_token?: PresentedToken;
  /** Personal: kept in ledger_personal, erasable. */
  intent?: string;
}

/** `token.refused`: who was refused, with what error and why. Committed before the answer is sent. */
export async function recordRefusal(ledger: LedgerWriter, r: Refusal): Promise<void> {
  const { intent, ...rest } = r;
  const payload = {
    ...rest,
    error: ledgerText(r.error, 64),
    error_description: ledgerText(r.error_description, 512),
    target: ledgerText(r.target, 512),
    decision: 'refused',
  };
  await ledger.commit({ entries: [{ kind: 'token.refused', actor: r.client_id, payload, personal: { intent } }] });
}
