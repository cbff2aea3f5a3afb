import {
  allowInsecureRequests, isDPoPNonceError, protectedResourceRequest, WWWAuthenticateChallengeError,
  type ProtectedResourceRequestBody,
} from 'oauth4webapi';
import type { DpopHandles } from './dpop_key.ts';
import { AgentInputError } from './errors.ts';
import { targetCheck } from './resource_target.ts';
import type { ExchangedToken } from './token.ts';

/** The shape of `fetch` that the MCP SDK's transports (and most HTTP clients) take. */
export type AuthorizedFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface ResourceFetchDeps {
  allowInsecure: boolean;
  handles: DpopHandles;
}

/** Bodies oauth4webapi sends as they are; others (Blob, FormData) are read into bytes first. */
function sendable(body: unknown): body is ProtectedResourceRequestBody {
  return body === undefined || body === null || typeof body === 'string' || body instanceof ArrayBuffer || body instanceof Uint8Array
    || body instanceof URLSearchParams || body instanceof ReadableStream;
}

async function prepareBody(body: BodyInit | null | undefined, headers: Headers): Promise<ProtectedResourceRequestBody> {
  if (ArrayBuffer.isView(body) && !(body instanceof Uint8Array)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (sendable(body)) return body;
  // Let the platform serialise it, as fetch would, including its Content-Type (e.g. a multipart boundary).
  const encoded = new Response(body);
  const type = encoded.headers.get('content-type');
  if (type && !headers.has('content-type')) headers.set('content-type', type);
  return new Uint8Array(await encoded.arrayBuffer());
}

function checkToken(token: ExchangedToken): void {
  if (typeof token !== 'object' || token === null || typeof token.accessToken !== 'string' || token.accessToken === '') {
    throw new AgentInputError('token', 'must be a token this agent exchanged');
  }
  if (token.tokenType === 'DPoP' && !token.dpopKey) throw new AgentInputError('token', 'is a DPoP token without its key');
}

/**
 * A fetch that presents `token`: `Authorization: Bearer`, or for a DPoP token `Authorization: DPoP`
 * with a fresh proof per request (htm, htu, ath), all made by oauth4webapi. Like fetch, it answers
 * HTTP errors (a 401 challenge included) with the Response rather than throwing. It sends the token
 * only to its own resource (see targetCheck): anything else is an AgentInputError, and no request.
 */
export function authorizedFetch(deps: ResourceFetchDeps, token: ExchangedToken): AuthorizedFetch {
  checkToken(token);
  const checkTarget = targetCheck(token);
  const handle = token.tokenType === 'DPoP' ? deps.handles.for(token.dpopKey!) : undefined;
  return async (input, init = {}) => {
    const request = input instanceof Request ? input : undefined;
    const url = URL.parse(input instanceof Request ? input.url : input instanceof URL ? input.href : input);
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new AgentInputError('url', 'must be an absolute http(s) URL');
    checkTarget(url);
    if (url.protocol === 'http:' && !deps.allowInsecure) throw new AgentInputError('url', `${url.origin} is not https; set http.allowInsecure for development only`);
    const method = (init.method ?? request?.method ?? 'GET').toUpperCase();
    // As fetch(request, init): headers given in init replace the request's.
    const headers = new Headers(init.headers ?? request?.headers);
    // The token (and its proof) is ours to set; a caller's own would be ambiguous.
    headers.delete('authorization');
    headers.delete('dpop');
    const body = await prepareBody(init.body !== undefined ? init.body : request?.body, headers);
    const signal = init.signal ?? request?.signal ?? undefined;
    const send = () => protectedResourceRequest(token.accessToken, method, url, new Headers(headers), body, {
      DPoP: handle, signal, [allowInsecureRequests]: deps.allowInsecure,
    });
    try {
      return await send();
    } catch (err) {
      if (!(err instanceof WWWAuthenticateChallengeError)) throw err;
      // RFC 9449 §9: the resource wants a nonce; the handle has it now. A stream cannot be sent twice.
      if (handle && isDPoPNonceError(err) && !(body instanceof ReadableStream)) {
        try {
          return await send();
        } catch (again) {
          if (again instanceof WWWAuthenticateChallengeError) return again.response;
          throw again;
        }
      }
      return err.response;
    }
  };
}
