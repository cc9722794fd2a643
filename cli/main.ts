/**
 * `spine`: the command line of Super Spine. Each command lives in `cli/commands/<name>.ts` and is
 * loaded only when run, so a command pays only for the clients it uses.
 */
import { describeError, ExitCode, exitCodeFor, UsageError } from './errors';
import { COMMON_USAGE } from './options';

// Loaded with require (not import()): the CLI is CommonJS run by tsx's require hook.
/** A command runs to completion; it may return an exit code other than 0 (health: unhealthy). */
type Command = (argv: string[]) => Promise<number | void>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  dev: { summary: 'start the whole mesh locally until Ctrl-C (what npm start runs)', load: async () => (require('./commands/dev') as typeof import('./commands/dev')).dev },
  put: { summary: 'put <network> <group> <contact> <json> [--wait]   write a contact', load: async () => (require('./commands/put') as typeof import('./commands/put')).put },
  get: { summary: 'get <network> [group [contact]]                  read materialized state', load: async () => (require('./commands/get') as typeof import('./commands/get')).get },
};

export const USAGE = `usage: spine <command> [arguments] [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, { summary }]) => `  ${name.padEnd(10)} ${summary.startsWith(name + ' ') ? summary.slice(name.length + 1) : summary}`)
  .join('\n')}

\`spine <command> --help\` describes a command.

${COMMON_USAGE}`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      console.log(USAGE);
      return ExitCode.ok;
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)}; commands: ${Object.keys(COMMANDS).join(', ')} (spine --help)`);
    const code = await (await command.load())(rest);
    return code ?? ExitCode.ok;
  } catch (error) {
    process.stderr.write(`spine: ${describeError(error)}\n`);
    if (process.env.SPINE_DEBUG) console.error(error);
    return exitCodeFor(error);
  }
}

if (require.main === module) {
  // Exits explicitly: idle keep-alive sockets of the Google clients would hold the process open.
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
