/**
 * What a command may touch of its process: the environment it reads and the streams it writes. The binary
 * passes the process's own; tests pass their own, so a command runs the same in either.
 */
export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}
