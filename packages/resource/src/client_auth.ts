export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

// application/x-www-form-urlencoded as RFC 6749 §2.3.1 requires before Basic: space is '+', the rest percent-encoded.
const formEncode = (value: string): string => new URLSearchParams({ v: value }).toString().slice(2);

/** The `Authorization: Basic …` value for this resource server's own intentgate client. */
export function basicAuthorization({ clientId, clientSecret }: ClientCredentials): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
}
