import { check, compileSchema, ValidationError } from '../registry/validate.ts';
import type { Db } from '../store/db.ts';
import type { LedgerWriter } from './writer.ts';

const validate = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['jti', 'outcome', 'action'],
  properties: {
    jti: { type: 'string', minLength: 1, maxLength: 128 },
    outcome: { enum: ['success', 'failure', 'denied', 'error'] },
    action: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,63}$' },
    object: {
      type: 'object',
      additionalProperties: false,
      properties: {
        type: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$' },
        id: { type: 'string', maxLength: 256 },
        created: { type: 'boolean' },
      },
    },
    // What was returned, summarised: counts and hashes, never raw data. Personal: erasable.
    summary: { type: 'object', maxProperties: 32 },
  },
});

export interface ResourceEvent {
  jti: string;
  outcome: 'success' | 'failure' | 'denied' | 'error';
  action: string;
  object?: { type?: string; id?: string; created?: boolean };
  summary?: Record<string, unknown>;
}

export type EventResult = { status: 201; seq: number } | { status: 403 | 404; message: string };

/**
 * A resource server's report of what a call with one of its tokens did. Accepted only for tokens whose
 * audience is that resource server; linked to the exchange that issued the token.
 */
export async function recordResourceEvent(db: Db, ledger: LedgerWriter, resourceServer: string, body: unknown): Promise<EventResult> {
  const event = check<ResourceEvent>(validate, body);
  if (event.summary && Buffer.byteLength(JSON.stringify(event.summary)) > 4096) {
    throw new ValidationError('summary must be at most 4096 bytes of counts and hashes', 'summary');
  }
  const token = await db('issued_tokens').where({ jti: event.jti }).first('audience', 'client_id', 'subject', 'subject_issuer', 'task');
  if (!token) return { status: 404, message: 'no token with that jti was issued' };
  if (token.audience !== resourceServer) return { status: 403, message: 'that token was issued for another resource server' };
  const issuedBy = await db('ledger_entries').where({ jti: event.jti }).whereIn('kind', ['exchange.granted', 'token.issued']).first('seq');
  const [seq] = await ledger.commit({
    entries: [{
      kind: 'resource.event',
      actor: resourceServer,
      payload: {
        jti: event.jti,
        client_id: token.client_id,
        user: token.subject ? { issuer: token.subject_issuer, sub: token.subject } : undefined,
        task: token.task ?? undefined,
        outcome: event.outcome,
        action: event.action,
        object: event.object,
        exchange_seq: issuedBy ? Number(issuedBy.seq) : undefined,
      },
      personal: { summary: event.summary },
    }],
  });
  return { status: 201, seq: seq! };
}
