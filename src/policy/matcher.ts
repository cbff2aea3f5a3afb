import { buildMongoQueryMatcher, type ConditionsMatcher } from '@casl/ability';
import { testAttribute, type AttrTest } from './attributes.ts';
import { ipInList, type IpRanges } from './net.ts';
import { inTimeWindow, type TimeWindow } from './time.ts';

/**
 * The CASL conditions matcher for compiled policies: Mongo-style conditions plus three operators
 * of our own, each taking a value prepared at compile time (no parsing while deciding):
 *   $attrs  AttrTest[]  strict attribute tests on a bag (object, user, client)
 *   $time   TimeWindow  wall-clock window in a time zone, on the `now` field
 *   $cidr   IpRanges    address ranges, on the `source_ip` field
 * Only $in and $eq of the built-in operators are emitted by `compile.ts`.
 */
type Instructions = NonNullable<Parameters<typeof buildMongoQueryMatcher>[0]>;
type Interpreters = NonNullable<Parameters<typeof buildMongoQueryMatcher>[1]>;
interface Node<V> { field: string; value: V }
interface Ctx { get(object: unknown, field: string): unknown }

const instructions: Instructions = {
  $attrs: { type: 'field' },
  $time: { type: 'field' },
  $cidr: { type: 'field' },
};

const interpreters: Interpreters = {
  attrs: (node: Node<AttrTest[]>, object: unknown, ctx: Ctx) => {
    const bag = ctx.get(object, node.field);
    if (typeof bag !== 'object' || bag === null) return false;
    return node.value.every((t) => testAttribute(bag as Record<string, unknown>, t));
  },
  time: (node: Node<TimeWindow>, object: unknown, ctx: Ctx) => inTimeWindow(node.value, ctx.get(object, node.field) as Date),
  cidr: (node: Node<IpRanges>, object: unknown, ctx: Ctx) => ipInList(node.value, ctx.get(object, node.field)),
};

/**
 * Equality without coercion for the built-in $eq/$in. Values of different types are incomparable:
 * NaN is neither -1, 0 nor 1, so every check built on it fails.
 */
function strictCompare(a: unknown, b: unknown): 0 | 1 | -1 {
  if (a === b) return 0;
  const comparable = typeof a === typeof b && (typeof a === 'string' || typeof a === 'number');
  if (!comparable) return Number.NaN as 0;
  return (a as string | number) > (b as string | number) ? 1 : -1;
}

export type PolicyConditions = Record<string, unknown>;

export const policyConditionsMatcher = buildMongoQueryMatcher(instructions, interpreters, {
  compare: strictCompare,
}) as unknown as ConditionsMatcher<PolicyConditions>;
