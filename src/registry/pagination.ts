import type { Knex } from 'knex';
import { ValidationError } from '../validate/schema.ts';

export interface Page<T> { items: T[]; next_cursor: string | null }
export interface PageParams { limit: number; after: string | undefined }

const MAX_LIMIT = 200;

/** Reads `limit` and `cursor` from a query string; the cursor is opaque to callers. */
export function pageParams(query: URLSearchParams): PageParams {
  const rawLimit = query.get('limit');
  let limit = 50;
  if (rawLimit !== null) {
    if (!/^\d{1,4}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > MAX_LIMIT) {
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_LIMIT}`, 'limit');
    }
    limit = Number(rawLimit);
  }
  const cursor = query.get('cursor');
  let after: string | undefined;
  if (cursor !== null) {
    after = cursor.length <= 1400 ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
    if (!after || Buffer.from(after, 'utf8').toString('base64url') !== cursor) throw new ValidationError('cursor is not one this server issued', 'cursor');
  }
  return { limit, after };
}

/** Keyset pagination over a unique text column. */
export async function paginate<R extends Record<string, unknown>, T>(query: Knex.QueryBuilder, key: string, params: PageParams, map: (row: R) => T): Promise<Page<T>> {
  if (params.after !== undefined) query.where(key, '>', params.after);
  const rows = (await query.orderBy(key, 'asc').limit(params.limit + 1)) as R[];
  const more = rows.length > params.limit;
  const page = more ? rows.slice(0, params.limit) : rows;
  const last = page.at(-1);
  return {
    items: page.map(map),
    next_cursor: more && last ? Buffer.from(String(last[key]), 'utf8').toString('base64url') : null,
  };
}
