/** A `cnf` claim (RFC 7800) that cannot be read, or binds by a method other than DPoP's `jkt`. */
export class UnreadableCnf extends Error {}

/**
 * The DPoP key a token is bound to (RFC 9449 §6.1: `cnf.jkt`), or undefined when it has no `cnf`. One
 * reading for the exchange, introspection and resource servers: a `cnf` that cannot be read, or that
 * names another confirmation method (e.g. mTLS `x5t#S256`), is refused, never taken as unbound.
 */
export function boundKey(claims: object): string | undefined {
  const { cnf } = claims as { cnf?: unknown };
  if (cnf === undefined) return undefined;
  if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf)) throw new UnreadableCnf('cnf claim is malformed');
  const members = Object.keys(cnf);
  if (members.length !== 1 || members[0] !== 'jkt') throw new UnreadableCnf('is bound by a confirmation method other than DPoP (cnf.jkt), which cannot be checked here');
  const { jkt } = cnf as { jkt: unknown };
  if (typeof jkt !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(jkt)) throw new UnreadableCnf('cnf.jkt is not a base64url SHA-256 thumbprint');
  return jkt;
}
