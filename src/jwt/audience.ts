/**
 * The audience rule for JWTs a client makes for intentgate (client assertions, client-signed actor
 * tokens): exactly one audience, as a string or a one-element array, and it is one of `accepted`. A token
 * made for several servers can be replayed at each of them (audience injection). No imports: a leaf.
 */
export function isSoleAudience(aud: unknown, accepted: ReadonlySet<string>): boolean {
  const audiences = Array.isArray(aud) ? aud : [aud];
  return audiences.length === 1 && typeof audiences[0] === 'string' && accepted.has(audiences[0]);
}
