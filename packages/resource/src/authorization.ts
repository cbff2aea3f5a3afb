import type { AuthScheme } from './errors.ts';

/** RFC 9068 tokens intentgate mints are ~1 KiB; anything this large is not one of them. */
export const MAX_TOKEN_LENGTH = 16_384;

export type Presented =
  | { kind: 'none' }
  | { kind: 'malformed'; reason: string }
  | { kind: 'too_large' }
  | { kind: 'token'; scheme: AuthScheme; token: string };

// RFC 6750 §2.1 b64token / RFC 9449 §7.1 token68: the scheme, one or more spaces, the token, nothing else.
const CREDENTIALS = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i;
const OUR_SCHEME = /^(Bearer|DPoP)(?: |$)/i;

/**
 * Reads the Authorization header. Another scheme (Basic, …) is treated as no credentials: RFC 6750
 * §3.1 asks for a bare challenge then, since the client may not know a token is needed.
 */
export function presentedToken(header: string | undefined): Presented {
  if (header === undefined || header === '') return { kind: 'none' };
  const scheme = OUR_SCHEME.exec(header);
  if (!scheme) return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?: |$)/.test(header) ? { kind: 'none' } : { kind: 'malformed', reason: 'Authorization header is malformed' };
  // Checked before the syntax so a huge value costs nothing more than its length.
  if (header.length > MAX_TOKEN_LENGTH + 16) return { kind: 'too_large' };
  const m = CREDENTIALS.exec(header);
  if (!m) return { kind: 'malformed', reason: `Authorization header must be "${scheme[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer'} <token>" with a token68 token` };
  if (m[2]!.length > MAX_TOKEN_LENGTH) return { kind: 'too_large' };
  return { kind: 'token', scheme: m[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: m[2]! };
}
