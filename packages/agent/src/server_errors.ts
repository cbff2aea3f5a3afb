import { ResponseBodyError, WWWAuthenticateChallengeError } from 'oauth4webapi';
import { ApprovalPending, ExchangeDenied, ExchangeFailed } from './errors.ts';
import type { ExchangeRequest } from './exchange_request.ts';

/** Polling default when a pending answer names no usable interval (RFC 8628 §3.2). */
const DEFAULT_INTERVAL = 5;

function retryAfter(response: Response): number | undefined {
  const value = response.headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

function typed(body: Record<string, unknown>, status: number, after: number | undefined, request: ExchangeRequest): ExchangeFailed {
  const base = { error: String(body.error), description: str(body.error_description), status, retryAfter: after, body };
  if (body.error === 'access_denied') {
    const reasons = Array.isArray(body.reasons) ? body.reasons.filter((r): r is string => typeof r === 'string') : [];
    return new ExchangeDenied({ ...base, reasons, reviewId: str(body.review_id) });
  }
  const reviewId = str(body.review_id);
  // Without a review id the request cannot be repeated, so it is an ordinary failure.
  if (body.error === 'authorization_pending' && reviewId) {
    const interval = typeof body.interval === 'number' && Number.isFinite(body.interval) && body.interval > 0 ? body.interval : DEFAULT_INTERVAL;
    return new ApprovalPending({ ...base, reviewId, interval, request });
  }
  return new ExchangeFailed(base);
}

/**
 * The OAuth library's error for an error answer, as this library's typed error; anything else
 * (network failure, abort, a library error of another kind) is returned unchanged.
 */
export async function fromOAuthError(err: unknown, request: ExchangeRequest): Promise<unknown> {
  if (err instanceof ResponseBodyError) return typed(err.cause, err.status, retryAfter(err.response), request);
  if (err instanceof WWWAuthenticateChallengeError) {
    // A 401 with a challenge (invalid_client): the body is still unread and holds intentgate's JSON.
    const body = await err.response.json().catch(() => undefined) as Record<string, unknown> | undefined;
    if (body && typeof body.error === 'string') return typed(body, err.status, retryAfter(err.response), request);
    const params = err.cause[0]?.parameters;
    return new ExchangeFailed({ error: params?.error ?? 'invalid_client', description: params?.error_description, status: err.status, body: { ...params } });
  }
  return err;
}
