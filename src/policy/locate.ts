import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { MAX_YAML_BYTES } from './yaml.ts';

export interface Position { line: number; column: number }

/**
 * Where in a policy's YAML text a validation error points, so an editor can show it at its line: the
 * first syntax error, else the deepest node of `field` (`rules.2.when.action`) that exists, at its key.
 */
export function locateField(text: string, field: string | undefined): Position | undefined {
  if (Buffer.byteLength(text, 'utf8') > MAX_YAML_BYTES) return undefined;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, resolveKnownTags: false, prettyErrors: false, logLevel: 'silent' });
  const syntax = doc.errors[0]?.linePos?.[0];
  if (syntax) return { line: syntax.line, column: syntax.col };
  const at = (offset: number | undefined): Position | undefined => {
    if (offset === undefined) return undefined;
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  let node: unknown = doc.contents;
  let found: Position | undefined = at((doc.contents as Node | null)?.range?.[0]);
  for (const segment of (field ?? '').split('.').filter(Boolean)) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === segment);
      if (!pair) break;
      found = at((pair.key as Node | null)?.range?.[0]) ?? found;
      node = pair.value;
    } else if (isSeq(node) && /^\d+$/.test(segment)) {
      const item = node.items[Number(segment)] as Node | undefined;
      if (!item) break;
      found = at(item.range?.[0]) ?? found;
      node = item;
    } else {
      break;
    }
  }
  return found;
}
