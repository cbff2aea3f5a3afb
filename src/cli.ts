import { main } from './cli/main.ts';

// The binary: the process's arguments, environment and streams; the commands are in cli/.
const code = await main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
// Exit once stdout has taken everything written (a pipe may still hold the tail of a long export); a drained
// server's leftover handles must not keep the process alive either.
process.stdout.write('', () => process.exit(code));
