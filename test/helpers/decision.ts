import type { DecisionInput } from '../../src/policy/decide.ts';

/** The expenses resource as a decision sees it (a read scope and a write scope), for tests that decide directly. */
export const EXPENSES_RESOURCE = {
  identifier: 'https://expenses.example',
  scopes: [
    { name: 'expenses:read', sensitivity: 'internal', operation: 'read' },
    { name: 'expenses:submit', sensitivity: 'confidential', operation: 'write' },
  ],
} as DecisionInput['resource'];
