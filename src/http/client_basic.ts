import type { Context } from 'koa';
import type Provider from 'oidc-provider';

function decode(part: string): string {
  return decodeURIComponent(part.replace(/\+/g, ' '));
}

/**
 * HTTP Basic client authentication (RFC 6749 §2.3.1) for intentgate's own endpoints outside the OAuth
 * ones (/ledger/*): the secret is compared by oidc-provider's Client, so there is one comparison in the
 * codebase. Returns the client id, or undefined for anything missing, malformed or wrong.
 */
export async function basicClient(provider: Provider, ctx: Context): Promise<string | undefined> {
  const header = ctx.get('authorization');
  if (!/^basic /i.test(header) || header.length > 2048) return undefined;
  const raw = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const i = raw.indexOf(':');
  if (i < 1) return undefined;
  let id: string;
  let secret: string;
  try {
    id = decode(raw.slice(0, i));
    secret = decode(raw.slice(i + 1));
  } catch {
    return undefined;
  }
  const client = await provider.Client.find(id);
  if (!client?.clientSecret || !secret) return undefined;
  return (client as unknown as { compareClientSecret(s: string): boolean }).compareClientSecret(secret) ? client.clientId : undefined;
}
