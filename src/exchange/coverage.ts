import type { AuthorizationDetail } from './details.ts';
import { canonical } from './details.ts';
import { invalidDetails, invalidScope, invalidTarget, type ExchangeError } from './errors.ts';
import type { TaskCeiling } from './subject.ts';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/** Members compared as a whole; `object` is compared field by field, `tool` only when the task names one. */
const WHOLE = ['type', 'action', 'purpose'] as const;

/**
 * Whether the task's detail `t` covers the requested `r` (already given the task's purpose if it named
 * none): the same type, action and purpose; the same tool when `t` names one; every field of `t`'s object
 * equal in `r`'s, except a numeric `amount`, which caps `r`'s; and any other member `t` names equal. `r` may
 * narrow (name object fields `t` leaves open), never add a member `t` lacks.
 */
export function covers(t: AuthorizationDetail, r: AuthorizationDetail): boolean {
  for (const k of WHOLE) if (!same(t[k], r[k])) return false;
  if (t.tool !== undefined && !same(t.tool, r.tool)) return false;
  if (t.object !== undefined) {
    if (!isObject(t.object) || !isObject(r.object)) return false;
    for (const [field, value] of Object.entries(t.object)) {
      const asked = r.object[field];
      if (field === 'amount' && typeof value === 'number') {
        if (typeof asked !== 'number' || !(asked <= value)) return false;
      } else if (!Object.hasOwn(r.object, field) || !same(value, asked)) {
        return false;
      }
    }
  }
  for (const k of Object.keys(r)) {
    if ((WHOLE as readonly string[]).includes(k) || k === 'tool' || k === 'object') continue;
    if (!Object.hasOwn(t, k) || !same(t[k], r[k])) return false;
  }
  for (const k of Object.keys(t)) {
    if ((WHOLE as readonly string[]).includes(k) || k === 'tool' || k === 'object') continue;
    if (!same(t[k], r[k])) return false;
  }
  return true;
}

/**
 * A tool call within its task: the details it may carry. Each requested detail must be covered by one of
 * the task's (see `covers`); one that names no purpose takes its covering detail's. Asking for none
 * carries the task's own, as any hop inherits its parent's. Throws `invalid_authorization_details`.
 */
export function coveredDetails(task: TaskCeiling, requested: AuthorizationDetail[]): AuthorizationDetail[] {
  if (requested.length === 0) return task.details;
  return requested.map((r, i) => {
    for (const t of task.details) {
      const withPurpose = r.purpose === undefined && t.purpose !== undefined ? { ...r, purpose: t.purpose } : r;
      if (covers(t, withPurpose)) return withPurpose;
    }
    throw invalidDetails(task.details.length === 0
      ? `authorization_details[${i}] is outside the task: the task declared no authorization details`
      : `authorization_details[${i}] is outside the task: no detail of the task covers it (same type, action, tool and purpose; the task's object fields; an amount within the task's)`);
  });
}

/**
 * Where a tool call leaves its task, as the refusal it gets (or undefined when it stays within): a resource
 * the task does not name (`invalid_target`), a scope beyond the task's (`invalid_scope`), or a detail no
 * detail of the task covers (`invalid_authorization_details`). A delegation (an agent as target) is within
 * the task's resources by definition: the sub-agent's own tokens are checked against the task at its hop.
 */
export function leavesTask(task: TaskCeiling, target: { kind: 'resource' | 'agent'; identifier: string }, scope: string[] | undefined, ceiling: string[], details: AuthorizationDetail[]): ExchangeError | { details: AuthorizationDetail[] } {
  if (target.kind === 'resource' && !task.resources.includes(target.identifier)) {
    return invalidTarget(`${target.identifier} is outside the task: its resources are ${task.resources.join(', ')}`);
  }
  const beyond = (scope ?? []).filter((s) => !ceiling.includes(s));
  if (beyond.length) return invalidScope(`scope ${beyond.join(' ')} is outside the task (or beyond what this client and ${target.identifier} allow)`);
  try {
    return { details: coveredDetails(task, details) };
  } catch (err) {
    return err as ExchangeError;
  }
}
