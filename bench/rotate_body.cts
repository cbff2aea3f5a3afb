// autocannon's worker threads load a `setupRequest` with require(), so this one module is CommonJS.
// It hands out the pre-built token-exchange bodies (one per line of the file named by
// IG_BENCH_BODIES) in turn, so consecutive requests carry different users' tokens; and, when
// IG_BENCH_PROOFS names a file, one unused DPoP proof per request from it.
const { readFileSync } = require('node:fs') as typeof import('node:fs');

function lines(file: string): string[] {
  const out = readFileSync(file, 'utf8').split('\n').filter((line) => line.length > 0);
  if (out.length === 0) throw new Error(`${file} is empty`);
  return out;
}

const bodiesFile = process.env.IG_BENCH_BODIES;
if (!bodiesFile) throw new Error('IG_BENCH_BODIES is not set');
const bodies = lines(bodiesFile);
const proofs = process.env.IG_BENCH_PROOFS ? lines(process.env.IG_BENCH_PROOFS) : undefined;
let next = 0;

module.exports = function rotateBody(req: { body?: string | Buffer; headers?: Record<string, string> }): { body?: string | Buffer } {
  req.body = bodies[next % bodies.length];
  // A proof is good once: past the last one, requests go without and are refused, which the run counts.
  if (proofs) req.headers = { ...req.headers, dpop: proofs[next] ?? '' };
  next++;
  return req;
};
