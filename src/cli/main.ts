import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/index.ts';
import { ValidationError } from '../validate/schema.ts';
import { AdminApiError } from './admin_api.ts';
import { COMMANDS, type Command } from './commands.ts';
import type { CliIo } from './io.ts';
import { UsageError } from './usage_error.ts';

// Composition only: the commands live in cli/commands.ts, each with its own usage and options.

const USAGE = `usage: intentgate <command> [options]      intentgate <command> --help

${COMMANDS.map((c) => `  ${c.usage}`).join('\n')}

Configuration comes from the environment (DATABASE_URL, DATA_DIR, INTENTGATE_KEK, ...; see README). Commands
work while a server runs: through its admin API on the embedded database, on the database itself on PostgreSQL.`;

/**
 * Runs the server until a signal has drained it; resolves with the exit code. The signals are the process's:
 * only the binary runs a server through here.
 */
async function runServer(config: Config, migrateAtStart: boolean, io: CliIo): Promise<number> {
  const { startServer } = await import('../server.ts');
  const server = await startServer(config, { migrate: migrateAtStart });
  const dev = config.mode === 'development';
  const lines = [
    dev ? '  intentgate is running in DEVELOPMENT MODE: not for production use' : '  intentgate is running',
    `  issuer:   ${config.issuer}`,
    `  listening: ${server.url}`,
    `  database: ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.dataDir}`}`,
  ];
  if (server.generatedAdminToken) {
    lines.push('', `  admin token (shown once, stored hashed): ${server.generatedAdminToken}`,
      '  lost it? `npm run intentgate -- admin token create --name you` makes another, server running or not');
  }
  const bar = '='.repeat(78);
  io.stderr.write(`\n${bar}\n${lines.join('\n')}\n${bar}\n\n`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      io.stderr.write(`received ${signal}; draining: finishing in-flight requests\n`);
      // The drain gives up on connections at server.shutdown_timeout; this is the backstop should the closing
      // steps after it (final checkpoint, database) hang regardless.
      setTimeout(() => {
        io.stderr.write('shutdown did not finish in time; exiting\n');
        resolve(1);
      }, (config.server.shutdownTimeout + 5) * 1000).unref();
      server.close().then(() => {
        io.stderr.write('drained; exiting\n');
        resolve(0);
      }, () => resolve(1));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/** The command whose words the arguments start with (the longest match). */
function find(positionals: string[]): Command | undefined {
  return COMMANDS.filter((c) => c.words.every((w, i) => positionals[i] === w)).sort((a, b) => b.words.length - a.words.length)[0];
}

function commandHelp(c: Command): string {
  return `usage: intentgate ${c.usage}\n\n${c.help}\n`;
}

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  const first = argv.findIndex((a) => a.startsWith('-'));
  const words = first < 0 ? argv : argv.slice(0, first);
  const command = find(words);
  if (!command) {
    if (words.length === 0) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    throw new UsageError(`unknown command: ${words.join(' ')} (usage: intentgate <command> [options]; intentgate --help lists the commands)`);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...command.options, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    // node's messages say what was wrong and suggest the fix; one line of it, with the command's usage.
    const message = (err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '');
    throw new UsageError(`${message} (see intentgate ${command.words.join(' ')} --help)`);
  }
  if (parsed.values.help) {
    io.stdout.write(commandHelp(command));
    return 0;
  }
  const args = parsed.positionals.slice(command.words.length);
  const expected = command.args ?? [];
  if (args.length !== expected.length) {
    throw new UsageError(`${command.words.join(' ')} takes ${expected.length ? expected.map((a) => `<${a}>`).join(' ') : 'no arguments'}, got ${args.length ? args.join(' ') : 'none'} (see intentgate ${command.words.join(' ')} --help)`);
  }
  if (command.words[0] === 'start-dev') return runServer(loadConfig('development', io.env), true, io);
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (command.words[0] === 'serve') return runServer(loadConfig('production', io.env), !values['no-migrate'], io);
  return (await command.run({ values, args, io })) ?? 0;
}

/**
 * `intentgate <argv>`: resolves with the exit code (0 done, 1 a check failed or a bug, 2 a mistake in the call
 * or the configuration) and never exits the process, so tests run it in theirs.
 */
export async function main(argv: string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    const known = err instanceof UsageError || err instanceof ConfigError || err instanceof ValidationError || err instanceof AdminApiError;
    // A system error (a refused connection, a file that is not there) is told in one line too; only a bug gets a stack.
    const system = !known && typeof (err as NodeJS.ErrnoException)?.code === 'string' && /^E[A-Z]+$/.test((err as NodeJS.ErrnoException).code!);
    io.stderr.write(`intentgate: ${known || system ? (err as Error).message : (err as Error).stack ?? String(err)}\n`);
    return known ? 2 : 1;
  }
}
