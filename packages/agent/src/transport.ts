import type { CryptoKeyPair, TokenEndpointResponse } from 'oauth4webapi';

/**
 * How one configuration style talks to the token endpoint. The exchange logic exists once, above this;
 * a transport only sends the grant (client authentication and DPoP proof included) and parses the
 * answer, throwing the OAuth library's own errors (ResponseBodyError, WWWAuthenticateChallengeError).
 */
export interface GrantTransport {
  /** The authorization server's issuer identifier, for messages. */
  readonly issuer: string;
  grant(grantType: string, params: URLSearchParams, options: { dpop?: CryptoKeyPair | undefined; signal?: AbortSignal | undefined }): Promise<TokenEndpointResponse>;
}
