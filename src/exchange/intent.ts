import { hasInvisible, INVISIBLE_KINDS } from '../validate/text.ts';
import { invalidRequest } from './errors.ts';

/**
 * The declared intent: free text for the record and for reviewers, never matched by policy.
 * NFC-normalised so the same words are stored the same way; bounded; nothing a reviewer cannot see
 * (checked before trimming, which would silently drop some of those characters at the ends).
 */
export function normalizeIntent(raw: string | undefined, required: boolean, maxLength: number): string | undefined {
  if (raw === undefined || raw === '') {
    if (required) throw invalidRequest('intent is required: say what the agent is doing and why');
    return undefined;
  }
  if (!raw.isWellFormed()) throw invalidRequest('intent must be valid Unicode text');
  if (hasInvisible(raw)) throw invalidRequest(`intent must not contain ${INVISIBLE_KINDS}`);
  const text = raw.normalize('NFC').trim();
  if ([...text].length > maxLength) throw invalidRequest(`intent must be at most ${maxLength} characters`);
  if (text === '') throw invalidRequest('intent must not be blank');
  return text;
}
