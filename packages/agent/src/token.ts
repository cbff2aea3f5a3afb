import type { CryptoKeyPair, TokenEndpointResponse } from 'oauth4webapi';
import type { AuthorizationDetail } from './exchange_request.ts';
import { UnexpectedResponse } from './errors.ts';

/** A token intentgate issued to this agent, and what it takes to present it. */
export interface ExchangedToken {
  readonly accessToken: string;
  /** `DPoP`: every request must carry a proof made with `dpopKey` (agent.fetch does it). */
  readonly tokenType: 'Bearer' | 'DPoP';
  /** Lifetime in seconds, as the server said. */
  readonly expiresIn: number;
  /** Milliseconds since the epoch: the response's arrival plus `expiresIn`. */
  readonly expiresAt: number;
  readonly scope: readonly string[];
  readonly authorizationDetails?: readonly AuthorizationDetail[];
  readonly issuedTokenType: string;
  /** The key the token is bound to (tokenType `DPoP`). */
  readonly dpopKey?: CryptoKeyPair;
  /** The resource the token was exchanged for: agent.fetch sends it only there (see resource_target.ts). */
  readonly resource?: string;
  /** The agent a delegation token was exchanged for: that agent's subject token, never sent to a resource. */
  readonly audience?: string;
}

/** A token's one target, as the request named it (exactly one of the two). */
export type TokenTarget = { resource: string; audience?: never } | { audience: string; resource?: never };

/**
 * Reads a successful response against the contract: RFC 8693 `issued_token_type`, `expires_in`, and
 * a token type that matches what was asked. A Bearer token where a DPoP proof was sent is refused:
 * the caller asked for a sender-constrained token and must not silently hold a bearer one.
 */
export function readToken(
  body: TokenEndpointResponse, receivedAt: number, requestedScope: string[], dpopKey: CryptoKeyPair | undefined, target: TokenTarget,
): ExchangedToken {
  const tokenType = body.token_type === 'bearer' ? 'Bearer' : body.token_type === 'dpop' ? 'DPoP' : undefined;
  if (tokenType === undefined) throw new UnexpectedResponse(`token_type ${JSON.stringify(body.token_type)} is neither Bearer nor DPoP`);
  if (dpopKey && tokenType !== 'DPoP') throw new UnexpectedResponse('a DPoP proof was sent but the server issued a Bearer token (does it support DPoP for the exchange?)');
  if (!dpopKey && tokenType === 'DPoP') throw new UnexpectedResponse('the server issued a DPoP token although no DPoP proof was sent');
  const expiresIn = body.expires_in;
  if (typeof expiresIn !== 'number' || !(expiresIn > 0)) throw new UnexpectedResponse('expires_in is missing or not positive');
  const issuedTokenType = body.issued_token_type;
  if (typeof issuedTokenType !== 'string' || issuedTokenType === '') throw new UnexpectedResponse('issued_token_type is missing (RFC 8693 §2.2.1)');
  const details = body.authorization_details;
  if (details !== undefined && (!Array.isArray(details) || details.some((d) => typeof d !== 'object' || d === null || typeof d.type !== 'string'))) {
    throw new UnexpectedResponse('authorization_details is not an array of typed objects');
  }
  return Object.freeze({
    accessToken: body.access_token,
    tokenType,
    expiresIn,
    expiresAt: receivedAt + expiresIn * 1000,
    // RFC 6749 §5.1: scope may be omitted when it is what was asked.
    scope: Object.freeze(body.scope !== undefined ? body.scope.split(' ').filter(Boolean) : [...requestedScope]),
    ...(details !== undefined ? { authorizationDetails: Object.freeze(structuredClone(details) as AuthorizationDetail[]) } : {}),
    issuedTokenType,
    ...(dpopKey ? { dpopKey } : {}),
    // From the request, not the token: an access token is opaque to its client.
    ...(target.resource !== undefined ? { resource: target.resource } : { audience: target.audience }),
  });
}
