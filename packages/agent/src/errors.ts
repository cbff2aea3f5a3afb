import type { ExchangeRequest } from './exchange_request.ts';

/** Every error this library raises on purpose; network failures and aborts keep their own types. */
export class IntentgateError extends Error {
  override name = 'IntentgateError';
}

/** The caller's input or options are unusable; raised before any request is sent. */
export class AgentInputError extends IntentgateError {
  override name = 'AgentInputError';
  /** The option or argument at fault, e.g. `intent` or `tools.approve_expense.scope`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** The server answered 200 with something the token-exchange contract does not allow. */
export class UnexpectedResponse extends IntentgateError {
  override name = 'UnexpectedResponse';
}

/** intentgate refused the exchange: an RFC 6749/8693 error answer, with what it sent. */
export class ExchangeFailed extends IntentgateError {
  override name = 'ExchangeFailed';
  /** The RFC error code, e.g. `invalid_scope`, `expired_token`, `slow_down`. */
  readonly error: string;
  readonly description: string | undefined;
  /** HTTP status of the answer. */
  readonly status: number;
  /** Seconds from a `Retry-After` header (429 and 503 answers), when one was sent. */
  readonly retryAfter: number | undefined;
  /** The full JSON body, including members beyond the RFC's. */
  readonly body: Readonly<Record<string, unknown>>;
  constructor(init: { error: string; description?: string | undefined; status: number; retryAfter?: number | undefined; body: Record<string, unknown> }) {
    super(init.description ? `${init.error}: ${init.description}` : init.error);
    this.error = init.error;
    this.description = init.description;
    this.status = init.status;
    this.retryAfter = init.retryAfter;
    this.body = init.body;
  }
}

/** `access_denied`: policy said no, a reviewer denied the request, or the task is suspended. */
export class ExchangeDenied extends ExchangeFailed {
  override name = 'ExchangeDenied';
  /** Machine-readable reason codes, e.g. `approval_limit_exceeded`, `review_denied`, `task_suspended`. */
  readonly reasons: readonly string[];
  /** The review that can lift a task suspension, when the task was suspended. */
  readonly reviewId: string | undefined;
  constructor(init: ConstructorParameters<typeof ExchangeFailed>[0] & { reasons: string[]; reviewId?: string | undefined }) {
    super(init);
    this.reasons = Object.freeze([...init.reasons]);
    this.reviewId = init.reviewId;
  }
}

/** `authorization_pending`: a person must approve; repeat the request with `reviewId` (see waitForApproval). */
export class ApprovalPending extends ExchangeFailed {
  override name = 'ApprovalPending';
  readonly reviewId: string;
  /** Seconds to wait between polls. */
  readonly interval: number;
  /** The request that was sent, so it can be repeated with `reviewId`. */
  readonly request: Readonly<ExchangeRequest>;
  constructor(init: ConstructorParameters<typeof ExchangeFailed>[0] & { reviewId: string; interval: number; request: ExchangeRequest }) {
    super(init);
    this.reviewId = init.reviewId;
    this.interval = init.interval;
    this.request = Object.freeze({ ...init.request });
  }
}
