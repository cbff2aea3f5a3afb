import { InsufficientScopeError, InvalidTokenError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { toAuthInfo } from './auth_info.ts';
import { headerSafe, ResourceAuthError } from './errors.ts';
import { authState } from './guard.ts';
import type { CallRequirement } from './requirement.ts';
import type { ResourceVerifier } from './verifier.ts';

export interface McpTokenVerifierOptions {
  /**
   * Checked on every request (e.g. a scope the whole server needs); a valid token that fails it is
   * reported to the ledger as denied, as koaAuth and nodeAuth do. Per-tool actions and objects are for
   * the tool handlers: `checkCall(accessFrom(extra.authInfo), {action, objectType, objectId})`.
   */
  requirement?: CallRequirement;
}

/**
 * The MCP SDK's OAuthTokenVerifier for `requireBearerAuth({ verifier, expectedResource, resourceMetadataUrl })`.
 *
 * - That middleware speaks Bearer only and cannot check a DPoP proof, so a DPoP-bound token is refused
 *   here (as presented without its proof) rather than accepted as a bearer token; with `requireDpop`
 *   every token is. Put nodeAuth in front of the route for DPoP callers.
 * - When the signing keys or introspection are unreachable this throws the SDK's ServerError, and
 *   requireBearerAuth answers 500 without Retry-After: the SDK has no 503. The token is refused all the
 *   same (fail closed); nodeAuth answers 503 temporarily_unavailable with Retry-After instead.
 * - Scopes given to requireBearerAuth's own `requiredScopes` are checked by the SDK and not reported;
 *   put them in `requirement` to have refusals reported.
 */
export function mcpTokenVerifier(verifier: ResourceVerifier, options: McpTokenVerifierOptions = {}): OAuthTokenVerifier {
  const requirement = options.requirement ?? {};
  verifier.assertRequirement(requirement);
  return {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
      try {
        // The SDK has already split the header; the URL is only a DPoP htu, which Bearer never uses.
        const access = await verifier.authenticate({ method: 'POST', url: verifier.resource, authorization: `Bearer ${token}` }, requirement);
        return toAuthInfo(authState(verifier, access), verifier.resource);
      } catch (err) {
        if (!(err instanceof ResourceAuthError)) throw err;
        if (err.access) verifier.reportDenial(err.access, requirement);
        // The SDK writes the message into WWW-Authenticate without escaping it: it must be header-safe already.
        const message = headerSafe(err.description);
        if (err.error === 'temporarily_unavailable') throw new ServerError(message);
        if (err.error === 'insufficient_scope') throw new InsufficientScopeError(message);
        throw new InvalidTokenError(message);
      }
    },
  };
}
