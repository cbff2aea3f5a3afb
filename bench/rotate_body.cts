// autocannon's worker threads load a `setupRequest` with require(), so this one module is CommonJS.
// It hands out the pre-built token-exchange bodies (one per line of the file named by
// IG_BENCH_BODIES) in turn, so consecutive requests carry different users' tokens.
const { readFileSync } = require('node:fs') as typeof import('node:fs');

const bodiesFile = process.env.IG_BENCH_BODIES;
if (!bodiesFile) throw new Error('IG_BENCH_BODIES is not set');
const bodies = readFileSync(bodiesFile, 'utf8').split('\n').filter((line) => line.length > 0);
if (bodies.length === 0) throw new Error(`${bodiesFile} holds no request bodies`);
let nextBody = 0;

module.exports = function rotateBody(req: { body?: string | Buffer }): { body?: string | Buffer } {
  req.body = bodies[nextBody++ % bodies.length];
  return req;
};
