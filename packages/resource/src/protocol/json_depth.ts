// JSON nesting bound shared by the server and the resource middleware (DPoP proof headers, token claims).

/**
 * How deeply arrays and objects may nest in any JSON from outside. Nothing legitimate comes close; the
 * walkers that check strings and canonicalise details recurse, and a few kilobytes of `[` would
 * otherwise overflow the stack (a 500) before anything refused them.
 */
export const MAX_JSON_DEPTH = 32;

/** Whether parsed JSON nests arrays or objects more than MAX_JSON_DEPTH deep. Iterative, so any depth is safe to ask about. */
export function tooDeep(value: unknown): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, depth] = top;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}
