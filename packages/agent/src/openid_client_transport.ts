import type { CryptoKeyPair, TokenEndpointResponse } from 'oauth4webapi';
import { genericGrantRequest, getDPoPHandle, type Configuration } from 'openid-client';
import { DpopHandles } from './dpop_key.ts';
import type { GrantTransport } from './transport.ts';

/**
 * The token endpoint through an openid-client Configuration. openid-client retries DPoP nonce errors
 * itself and takes its timeout from the Configuration; it has no per-request AbortSignal, so the
 * exchange races the signal instead.
 */
export class OpenidClientTransport implements GrantTransport {
  readonly issuer: string;
  readonly #config: Configuration;
  readonly #handles: DpopHandles;

  constructor(config: Configuration) {
    this.issuer = config.serverMetadata().issuer;
    this.#config = config;
    this.#handles = new DpopHandles((pair) => getDPoPHandle(config, pair));
  }

  grant(grantType: string, params: URLSearchParams, options: { dpop?: CryptoKeyPair | undefined }): Promise<TokenEndpointResponse> {
    return genericGrantRequest(this.#config, grantType, params, options.dpop ? { DPoP: this.#handles.for(options.dpop) } : undefined);
  }
}
