import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { parseBasic } from './client_auth.ts';

/**
 * HTTP Basic client authentication (RFC 6749 §2.3.1) for intentgate's own endpoints outside the OAuth
 * ones (/ledger/*): the header is read by the one strict parser (src/http/client_auth.ts) and the
 * secret compared by oidc-provider's Client, so there is one comparison in the codebase. Returns the
 * client id, or undefined for anything missing, malformed or wrong.
 */
export async function basicClient(provider: Provider, ctx: Context): Promise<string | undefined> {
  const credentials = parseBasic(ctx.get('authorization'));
  if (!credentials) return undefined;
  const client = await provider.Client.find(credentials.clientId);
  if (!client?.clientSecret) return undefined;
  return (client as unknown as { compareClientSecret(s: string): boolean }).compareClientSecret(credentials.secret) ? client.clientId : undefined;
}
