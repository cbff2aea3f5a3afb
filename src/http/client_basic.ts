import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { AuthFailureReason } from '../ledger/auth_failures.ts';
import { parseBasic } from './client_auth.ts';

/** The outcome of HTTP Basic client credentials: the client, or why not (and which registered client, if one was named). */
export type BasicOutcome =
  | { clientId: string }
  | { failure: AuthFailureReason; registeredClientId?: string };

/**
 * HTTP Basic client authentication (RFC 6749 §2.3.1) outside oidc-provider's own flow: the header is
 * read by the one strict parser (src/http/client_auth.ts) and the secret compared by oidc-provider's
 * Client, so there is one comparison in the codebase. Storage failures are the caller's to map.
 */
export async function checkBasic(provider: Provider, ctx: Context): Promise<BasicOutcome> {
  const header = ctx.get('authorization');
  if (header === '') return { failure: 'missing' };
  const credentials = parseBasic(header);
  if (!credentials) return { failure: 'malformed' };
  const client = await provider.Client.find(credentials.clientId);
  if (!client?.clientSecret) return { failure: 'unknown_client' };
  if ((client as unknown as { compareClientSecret(s: string): boolean }).compareClientSecret(credentials.secret)) return { clientId: client.clientId };
  return { failure: 'invalid_credentials', registeredClientId: client.clientId };
}

/** For intentgate's own endpoints (/ledger/*): the client id, or undefined for anything missing, malformed or wrong. */
export async function basicClient(provider: Provider, ctx: Context): Promise<string | undefined> {
  const outcome = await checkBasic(provider, ctx);
  return 'clientId' in outcome ? outcome.clientId : undefined;
}
