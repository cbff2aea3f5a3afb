import { check, compileSchema, ValidationError } from '../validate/schema.ts';
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

interface Detail { action?: unknown; object?: { type?: unknown; id?: unknown } }

/**
 * Whether the token's details carry what the event says was done: the same action, and the object's type
 * and id where the event names them (the rule the resource middleware's checkCall applies to a call). An
 * object the call created has an id no detail could name in advance, so only a detail that names the type
 * and no id covers it: a token for one named object never reports the creation of another.
 */
function carried(details: Detail[], event: ResourceEvent): boolean {
  const o = event.object;
  return details.some((d) => d.action === event.action
    && (o?.type === undefined || d.object?.type === o.type)
    && (o?.id === undefined || (o.created === true ? d.object?.id === undefined : d.object?.id === o.id)));
}

/** Why an event is not about what its token allowed (403), or undefined when it is. */
function outsideDetails(details: Detail[], event: ResourceEvent): string | undefined {
  // A refusal records what was attempted, which by definition the token did not cover; history never reads it.
  if (event.outcome === 'denied' || carried(details, event)) return undefined;
  const what = `${event.action}${event.object?.type ? ` on ${event.object.type}` : ''}${event.object?.id !== undefined ? ' with that id' : ''}`;
  return details.length === 0
    ? `the token carries no authorization_details, so it allowed no ${event.action}: only a denied event may be reported for it`
    : `the token's authorization_details do not carry ${what}; report only what the token allowed, or an object the call created (object.created) under a detail naming its type and no id`;
}

/**
 * A resource server's report of what a call with one of its tokens did. Accepted only for tokens whose
 * audience is that resource server, and (except a `denied` event, which records a refused attempt) only
 * for an action and object the token's details carry or an object the call created; linked to the
 * exchange that issued the token. Its `success` events become history at that resource alone.
 */
/** The issued-token index's row for a token (src/tokens owns it), as an event is checked against it. */
export type TokenLookup = (jti: string) => Promise<{ audience: string; client_id: string; subject: string | null; subject_issuer: string | null; task: string | null; authorization_details: unknown } | undefined>;

export async function recordResourceEvent(db: Db, findToken: TokenLookup, ledger: LedgerWriter, resourceServer: string, body: unknown): Promise<EventResult> {
  const event = check<ResourceEvent>(validate, body);
  if (event.summary && Buffer.byteLength(JSON.stringify(event.summary)) > 4096) {
    throw new ValidationError('summary must be at most 4096 bytes of counts and hashes', 'summary');
  }
  if (event.object?.created === true && (event.outcome !== 'success' || event.object.type === undefined || event.object.id === undefined)) {
    throw new ValidationError('object.created is for a success that created the object, and needs its type and id', 'object.created');
  }
  const token = await findToken(event.jti);
  if (!token) return { status: 404, message: 'no token with that jti was issued' };
  if (token.audience !== resourceServer) return { status: 403, message: 'that token was issued for another resource server' };
  const outside = outsideDetails(Array.isArray(token.authorization_details) ? token.authorization_details as Detail[] : [], event);
  if (outside) return { status: 403, message: outside };
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
