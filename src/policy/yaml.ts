import { parseAllDocuments } from 'yaml';
import { ValidationError } from '../validate/schema.ts';

/** Policy and fixture files are admin input: bounded in size before the parser sees them. */
export const MAX_YAML_BYTES = 256 * 1024;
// A few aliases are handy for repeated scope lists; more is how expansion ("billion laughs") bombs work.
const MAX_ALIAS_COUNT = 16;

/**
 * Parses one YAML document into plain JSON-like data, refusing anything a schema check cannot see:
 * oversized input, several documents, parser warnings (unknown tags), and alias expansion bombs.
 * `what` names the input in messages ("policy", "fixtures").
 */
export function loadYaml(text: string, what: string): unknown {
  if (Buffer.byteLength(text, 'utf8') > MAX_YAML_BYTES) {
    throw new ValidationError(`${what} is larger than ${MAX_YAML_BYTES} bytes`);
  }
  // resolveKnownTags: false keeps `!!binary` and friends from producing Buffers or Sets.
  const docs = parseAllDocuments(text, { uniqueKeys: true, resolveKnownTags: false, prettyErrors: false, logLevel: 'silent' });
  const doc = docs[0];
  if (!doc || docs.length > 1) throw new ValidationError(`${what} must hold exactly one YAML document`);
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new ValidationError(`${what} is not valid YAML: ${problem.message.split('\n')[0]}`);
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    throw new ValidationError(`${what} is not valid YAML: ${(err as Error).message}`);
  }
}
