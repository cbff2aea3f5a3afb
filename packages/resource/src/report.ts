import type { AccessInfo } from './access.ts';
import { basicAuthorization, type ClientCredentials } from './client_auth.ts';

/**
 * What a call made with a token did, for intentgate's ledger (`POST /ledger/events`). Except a `denied`
 * event (a refused attempt), the action and object must be ones the token's authorization_details carry,
 * or an object the call created; the ledger answers 403 otherwise. Only `success` events count as history,
 * and only at this resource.
 */
export interface ResourceEventReport {
  outcome: 'success' | 'failure' | 'denied' | 'error';
  /** Lower-case identifier: `approve`, `submit`, … */
  action: string;
  /** `created: true` (a success only, with type and id): the call created this object, of a type a detail with this action names. */
  object?: { type?: string; id?: string; created?: boolean };
  /** Counts and hashes, never the data itself. */
  summary?: Record<string, unknown>;
}

/** The ledger refused or could not take a report. */
export class ResourceReportError extends Error {
  readonly status: number | undefined;
  readonly error: string | undefined;

  constructor(message: string, status?: number, error?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ResourceReportError';
    this.status = status;
    this.error = error;
  }
}

/** Posts one event as the resource server's own client; answers the ledger sequence number. */
export async function postResourceEvent(endpoint: string, credentials: ClientCredentials, access: AccessInfo, event: ResourceEventReport, timeoutMs: number): Promise<number> {
  const body = { jti: access.jti, outcome: event.outcome, action: event.action, object: event.object, summary: event.summary };
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: { authorization: basicAuthorization(credentials), 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (err) {
    throw new ResourceReportError(`ledger event could not be sent to ${endpoint}`, undefined, undefined, { cause: err });
  }
  const answer = (await res.json().catch(() => undefined)) as { seq?: unknown; error?: unknown; error_description?: unknown } | undefined;
  if (res.status === 201 && typeof answer?.seq === 'number') return answer.seq;
  const error = typeof answer?.error === 'string' ? answer.error : undefined;
  const description = typeof answer?.error_description === 'string' ? `: ${answer.error_description}` : '';
  throw new ResourceReportError(`ledger refused the event (${res.status}${error ? ` ${error}` : ''}${description})`, res.status, error);
}
