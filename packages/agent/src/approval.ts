import { sleep } from './abort.ts';
import { AgentInputError, ApprovalPending, ExchangeFailed } from './errors.ts';
import type { ExchangeRequest } from './exchange_request.ts';
import type { ExchangedToken } from './token.ts';

export interface WaitOptions {
  signal?: AbortSignal;
  /** Give up after this long; rejects with the `TimeoutError` of AbortSignal.timeout. */
  timeoutMs?: number;
  /** Called before each poll (e.g. to log or show progress). */
  onPoll?: (poll: { attempt: number; interval: number; reviewId: string }) => void;
  /** A fresh subject token for each poll, for reviews that outlast the user's token. */
  subjectToken?: string | (() => string | Promise<string>);
}

/** RFC 8628 §3.5: each `slow_down` adds five seconds to the interval. */
const SLOW_DOWN_STEP = 5;
/** Bounds on the wait, whatever a server says: no busy loop, no timer overflow. */
const MIN_INTERVAL = 1;
const MAX_INTERVAL = 3600;

const clamp = (s: number) => Math.min(MAX_INTERVAL, Math.max(MIN_INTERVAL, s));

function combined(signal: AbortSignal | undefined, timeoutMs: number | undefined): AbortSignal | undefined {
  if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0)) throw new AgentInputError('timeoutMs', 'must be a positive number of milliseconds');
  const signals = [signal, timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs)].filter((s): s is AbortSignal => s !== undefined);
  return signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
}

/**
 * Polls like a device-flow client: the same request with `review_id`, every `interval` seconds, until
 * a reviewer decides. Denial, expiry and any other refusal propagate as the exchange raised them.
 */
export async function waitForApproval(
  exchange: (req: ExchangeRequest, signal?: AbortSignal) => Promise<ExchangedToken>,
  pending: ApprovalPending,
  options: WaitOptions = {},
): Promise<ExchangedToken> {
  if (!(pending instanceof ApprovalPending)) throw new AgentInputError('pending', 'must be the ApprovalPending an exchange threw');
  const signal = combined(options.signal, options.timeoutMs);
  const { reviewId } = pending;
  let interval = clamp(pending.interval);
  for (let attempt = 1; ; attempt++) {
    await sleep(interval * 1000, signal);
    options.onPoll?.({ attempt, interval, reviewId });
    const subjectToken = typeof options.subjectToken === 'function' ? await options.subjectToken() : options.subjectToken ?? pending.request.subjectToken;
    try {
      return await exchange({ ...pending.request, subjectToken, reviewId }, signal);
    } catch (err) {
      if (err instanceof ApprovalPending) {
        interval = clamp(Math.max(interval, err.interval));
      } else if (err instanceof ExchangeFailed && err.error === 'slow_down') {
        interval = clamp(Math.max(interval + SLOW_DOWN_STEP, err.retryAfter ?? 0));
      } else {
        throw err;
      }
    }
  }
}
