import { invalidRequest } from './errors.ts';

// Cc (C0, DEL, C1) plus the bidi overrides and isolates that can make text read differently than it is stored.
const FORBIDDEN = /[\p{Cc}\u202A-\u202E\u2066-\u2069\u200E\u200F]/u;

/**
 * The declared intent: free text for the record and for reviewers, never matched by policy.
 * NFC-normalised so the same words are stored the same way; bounded; no control characters.
 */
export function normalizeIntent(raw: string | undefined, required: boolean, maxLength: number): string | undefined {
  if (raw === undefined || raw === '') {
    if (required) throw invalidRequest('intent is required: say what the agent is doing and why');
    return undefined;
  }
  if (!raw.isWellFormed()) throw invalidRequest('intent must be valid Unicode text');
  const text = raw.normalize('NFC').trim();
  if (FORBIDDEN.test(text)) throw invalidRequest('intent must not contain control or bidirectional-override characters');
  if ([...text].length > maxLength) throw invalidRequest(`intent must be at most ${maxLength} characters`);
  if (text === '') throw invalidRequest('intent must not be blank');
  return text;
}
