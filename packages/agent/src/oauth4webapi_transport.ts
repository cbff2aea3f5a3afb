import {
  allowInsecureRequests, DPoP, genericTokenEndpointRequest, isDPoPNonceError, processGenericTokenEndpointResponse,
  type AuthorizationServer, type Client, type ClientAuth, type CryptoKeyPair, type TokenEndpointResponse,
} from 'oauth4webapi';
import { DpopHandles } from './dpop_key.ts';
import type { GrantTransport } from './transport.ts';

/** The token endpoint through oauth4webapi, for callers that did (or let us do) discovery with it. */
export class Oauth4webapiTransport implements GrantTransport {
  readonly issuer: string;
  readonly #as: AuthorizationServer;
  readonly #client: Client;
  readonly #auth: ClientAuth;
  readonly #allowInsecure: boolean;
  readonly #handles: DpopHandles;

  constructor(as: AuthorizationServer, client: Client, auth: ClientAuth, allowInsecure: boolean) {
    this.issuer = as.issuer;
    this.#as = as;
    this.#client = client;
    this.#auth = auth;
    this.#allowInsecure = allowInsecure;
    this.#handles = new DpopHandles((pair) => DPoP(client, pair));
  }

  async grant(grantType: string, params: URLSearchParams, options: { dpop?: CryptoKeyPair | undefined; signal?: AbortSignal | undefined }): Promise<TokenEndpointResponse> {
    const handle = options.dpop ? this.#handles.for(options.dpop) : undefined;
    const attempt = async () => {
      const response = await genericTokenEndpointRequest(this.#as, this.#client, this.#auth, grantType, params, {
        DPoP: handle, signal: options.signal, [allowInsecureRequests]: this.#allowInsecure,
      });
      // `N_A` is let through so the exchange can refuse it with a clear message (intentgate never sends it).
      return processGenericTokenEndpointResponse(this.#as, this.#client, response, { recognizedTokenTypes: { n_a: () => {} } });
    };
    try {
      return await attempt();
    } catch (err) {
      // RFC 9449 §8: a server that wants a nonce says so once; the handle now holds it.
      if (handle && isDPoPNonceError(err)) return attempt();
      throw err;
    }
  }
}
