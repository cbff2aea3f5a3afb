import type { IncomingMessage, ServerResponse } from 'node:http';
import { DPOP_ALGS } from './protocol/dpop_proof.ts';
import type { ResourceVerifier } from './verifier.ts';

interface MetadataDescription {
  scopesSupported?: string[];
  resourceName?: string;
}

/**
 * Either the verifier that guards the resource, from which `resource`, `authorization_servers` (its
 * issuer) and `dpop_bound_access_tokens_required` (its `requireDpop`) are taken, so the document cannot
 * disagree with what is enforced (recommended); or, for metadata served apart from the verifier, each
 * of them explicitly.
 */
export type ProtectedResourceMetadataOptions = MetadataDescription & (
  | { verifier: Pick<ResourceVerifier, 'issuer' | 'resource' | 'requiresDpop'>; resource?: never; authorizationServers?: never; dpopBound?: never }
  | {
    verifier?: never;
    /** This resource server's identifier (the tokens' `aud`). */
    resource: string;
    /** Issuer URLs of the authorization servers (intentgate's issuer). */
    authorizationServers: string[];
    /** Announce that only DPoP-bound tokens are accepted: then the verifier must have `requireDpop`. */
    dpopBound?: boolean;
  });

/** RFC 9728 §2 metadata document. */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  bearer_methods_supported: ['header'];
  scopes_supported?: string[];
  dpop_signing_alg_values_supported: string[];
  dpop_bound_access_tokens_required?: boolean;
  resource_name?: string;
}

function parsedResource(resource: string): URL {
  const u = URL.parse(resource);
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw new TypeError('resource must be an absolute http(s) URL');
  // RFC 9728 §1.2: a resource identifier has no fragment.
  if (u.hash || resource.includes('#')) throw new TypeError('resource must not have a fragment');
  return u;
}

function described(options: ProtectedResourceMetadataOptions): { resource: string; authorizationServers: string[]; dpopBound: boolean | undefined } {
  const { verifier } = options;
  if (!verifier) return { resource: options.resource, authorizationServers: options.authorizationServers, dpopBound: options.dpopBound };
  // Said twice, the two could disagree: JavaScript callers are not held back by the types.
  if (options.resource !== undefined || options.authorizationServers !== undefined || options.dpopBound !== undefined) {
    throw new TypeError('with verifier, resource, authorizationServers and dpopBound come from it; do not pass them too');
  }
  return { resource: verifier.resource, authorizationServers: [verifier.issuer], dpopBound: verifier.requiresDpop };
}

export function protectedResourceMetadata(options: ProtectedResourceMetadataOptions): ProtectedResourceMetadata {
  const { resource, authorizationServers, dpopBound } = described(options);
  parsedResource(resource);
  if (!Array.isArray(authorizationServers) || authorizationServers.length === 0) throw new TypeError('authorizationServers must name at least one issuer');
  return {
    resource,
    authorization_servers: [...authorizationServers],
    // Tokens only in the Authorization header: query and body tokens leak into logs (RFC 6750 §2.2, §2.3).
    bearer_methods_supported: ['header'],
    ...(options.scopesSupported ? { scopes_supported: [...options.scopesSupported] } : {}),
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
    ...(dpopBound !== undefined ? { dpop_bound_access_tokens_required: dpopBound } : {}),
    ...(options.resourceName ? { resource_name: options.resourceName } : {}),
  };
}

/**
 * RFC 9728 §3.1: `/.well-known/oauth-protected-resource` goes between the host and the resource's path,
 * any terminating slash of the path removed, so `https://api.example/mcp` and `https://api.example/mcp/`
 * are served at `https://api.example/.well-known/oauth-protected-resource/mcp`.
 */
export function metadataUrl(resource: string): string {
  const u = parsedResource(resource);
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.origin}/.well-known/oauth-protected-resource${path}${u.search}`;
}

/** A node:http / Express handler serving the document: GET and HEAD only, JSON, cacheable. */
export function protectedResourceMetadataHandler(document: ProtectedResourceMetadata): (req: IncomingMessage, res: ServerResponse) => void {
  const body = JSON.stringify(document);
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'method_not_allowed', error_description: 'metadata is served to GET only' }));
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'public, max-age=3600',
      // Public metadata that browser-based MCP clients fetch cross-origin.
      'access-control-allow-origin': '*',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
