import { hasPassed } from '../../packages/resource/src/protocol/time.ts';

/**
 * The issued-token index's statuses: `active`, `revoked` (for good), and `suspended` (a task token while its
 * task is suspended; made active again when the task resumes).
 */
export type TokenStatus = 'active' | 'revoked' | 'suspended';

/** The one liveness rule: a token intentgate issued is live while its row is `active` and unexpired. */
export function isLive<T extends { status?: unknown; expires_at?: unknown }>(row: T | undefined | null): row is T {
  return !!row && row.status === 'active' && !hasPassed(row.expires_at as Date | string);
}
