import type { ResourceEventReport } from './report.ts';
import type { CallRequirement } from './requirement.ts';

// The ledger's own limits on an event's object (src/ledger/events.ts); a report it would refuse is not sent.
const OBJECT_TYPE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const ACTION = /^[a-z][a-z0-9_]{0,63}$/;

/** The ledger event for a valid token that did not cover the call it was presented for. */
export function denialEvent(requirement: CallRequirement): ResourceEventReport {
  const object: NonNullable<ResourceEventReport['object']> = {};
  if (requirement.objectType && OBJECT_TYPE.test(requirement.objectType)) object.type = requirement.objectType;
  if (requirement.objectId && requirement.objectId.length <= 256) object.id = requirement.objectId;
  // A scope-only requirement names no action; 'access' stands for the request as a whole.
  const action = requirement.action && ACTION.test(requirement.action) ? requirement.action : 'access';
  return {
    outcome: 'denied',
    action,
    ...(Object.keys(object).length > 0 ? { object } : {}),
    summary: { error: 'insufficient_scope' },
  };
}
