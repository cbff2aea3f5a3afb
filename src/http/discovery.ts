import type { Config } from '../config/index.ts';
import { CLIENT_AUTH_ALGS, CLIENT_AUTH_METHODS } from './provider.ts';
import { SUPPORTED_GRANT_TYPES } from '../registry/clients.ts';
import { DPOP_ALGS } from '../../packages/resource/src/protocol/dpop_proof.ts';

/**
 * RFC 8414 metadata, served at both well-known paths. Built here rather than taken from oidc-provider,
 * whose document advertises endpoints (authorization, userinfo, …) that intentgate does not serve.
 */
export function discoveryDocument(config: Config, detailTypes: string[]): Record<string, unknown> {
  const base = config.issuer;
  return {
    issuer: base,
    token_endpoint: `${base}/token`,
    jwks_uri: `${base}/jwks`,
    grant_types_supported: [...SUPPORTED_GRANT_TYPES],
    // No one can log in at intentgate, so no response type can be used at an authorization endpoint.
    response_types_supported: [],
    token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    token_endpoint_auth_signing_alg_values_supported: CLIENT_AUTH_ALGS,
    introspection_endpoint: `${base}/token/introspection`,
    introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    introspection_endpoint_auth_signing_alg_values_supported: CLIENT_AUTH_ALGS,
    revocation_endpoint: `${base}/token/revocation`,
    revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    revocation_endpoint_auth_signing_alg_values_supported: CLIENT_AUTH_ALGS,
    authorization_details_types_supported: detailTypes,
    // Both grants bind tokens to a DPoP key when the request carries a proof (RFC 9449 §5.1).
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
  };
}
