/** An RFC 9493 subject identifier of format `iss_sub`. */
export interface IssSub { format: 'iss_sub'; iss: string; sub: string }

/**
 * The user as every token and introspection answer names them (claim `sub_id`): their issuer beside
 * `sub`, so one `sub` at two identity providers is two users for every resource server.
 */
export function issSub(iss: string, sub: string): IssSub {
  return { format: 'iss_sub', iss, sub };
}
