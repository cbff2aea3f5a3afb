/**
 * An exchange refused with an RFC error code. Rendered by intentgate itself (not oidc-provider's
 * serializer, which drops members such as `reasons`), always as `{error, error_description, ...extra}`.
 */
export class ExchangeError extends Error {
  readonly code: string;
  readonly status: number;
  readonly extra: Record<string, unknown>;
  constructor(code: string, description: string, extra: Record<string, unknown> = {}, status = 400, cause?: unknown) {
    super(description, cause === undefined ? undefined : { cause });
    this.code = code;
    this.status = status;
    this.extra = extra;
  }
}

export const invalidRequest = (d: string) => new ExchangeError('invalid_request', d);
export const invalidTarget = (d: string) => new ExchangeError('invalid_target', d);
export const invalidScope = (d: string) => new ExchangeError('invalid_scope', d);
export const invalidDetails = (d: string) => new ExchangeError('invalid_authorization_details', d);
