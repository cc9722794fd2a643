/**
 * `spine`: the command line of Super Spine. Each command lives in `cli/commands/<name>.ts` and is
 * loaded only when run, so a command pays only for the clients it uses.
 */
import { parseSetting } from '../shared/settings';
import { describeError, ExitCode, exitCodeFor, UsageError } from './errors';
import { COMMON_USAGE } from './options';

/** A command runs to completion; it may return an exit code other than 0 (health: unhealthy). */
type Command = (argv: string[]) => Promise<number | void>;

// Loaded with require (not import()): the CLI is CommonJS, run by tsx's require hook.
const COMMANDS: Record<string, { args: string; summary: string; load: () => Promise<Command> }> = {
  put: {
    args: '<network> <group> <contact> <json> [--wait]',
    summary: 'write a contact',
    load: async () => (require('./commands/put') as typeof import('./commands/put')).put,
  },
  get: {
    args: '<network> [group [contact]]',
    summary: 'read materialized state',
    load: async () => (require('./commands/get') as typeof import('./commands/get')).get,
  },
  ls: {
    args: '[network]',
    summary: 'list networks, or the groups of one',
    load: async () => (require('./commands/ls') as typeof import('./commands/ls')).ls,
  },
  query: {
    args: '<network> --tag T --author A --type T --attr K=V',
    summary: 'find groups',
    load: async () => (require('./commands/query') as typeof import('./commands/query')).query,
  },
  watch: {
    args: '<path>',
    summary: 'stream changes under network[/group] until Ctrl-C',
    load: async () => (require('./commands/watch') as typeof import('./commands/watch')).watch,
  },
  snapshot: {
    args: 'create|list|show|restore|delete <network> [snapshot]',
    summary: 'snapshots of a network',
    load: async () => (require('./commands/snapshot') as typeof import('./commands/snapshot')).snapshot,
  },
  health: {
    args: '',
    summary: 'run the health check (exit 0 healthy, 8 unhealthy)',
    load: async () => (require('./commands/health') as typeof import('./commands/health')).health,
  },
  heartbeat: {
    args: '<agentId> [status]',
    summary: 'tell the registry an agent is alive',
    load: async () => (require('./commands/heartbeat') as typeof import('./commands/heartbeat')).heartbeat,
  },
  dlq: {
    args: 'list | replay <id>',
    summary: 'dead letters: list them, publish one again',
    load: async () => (require('./commands/dlq') as typeof import('./commands/dlq')).dlq,
  },
  keys: {
    args: 'create|list|revoke [id] [--read N] [--write N]',
    summary: "the gateway's API keys",
    load: async () => (require('./commands/keys') as typeof import('./commands/keys')).keys,
  },
  history: {
    args: '<network> [group [contact]] [--since T] [--until T]',
    summary: 'writes from the event archive, newest first, with outcomes',
    load: async () => (require('./commands/history') as typeof import('./commands/history')).history,
  },
  restore: {
    args: '<network> --at T [--as <new-network>]',
    summary: 'a network as it was at an instant (snapshot plus archived events)',
    load: async () => (require('./commands/restore') as typeof import('./commands/restore')).restore,
  },
  export: {
    args: '<network> [file]',
    summary: 'write a network to a portable JSON file',
    load: async () => (require('./commands/export') as typeof import('./commands/export')).exportNetwork,
  },
  import: {
    args: '<file> [--network ID] [--replace]',
    summary: 'load a file written by export',
    load: async () => (require('./commands/import') as typeof import('./commands/import')).importNetwork,
  },
  emulators: {
    args: '',
    summary: 'run the Pub/Sub, Storage and Tasks emulators (npm run emulators)',
    load: async () => (require('./commands/emulators') as typeof import('./commands/emulators')).emulators,
  },
  dev: {
    args: '',
    summary: 'start the whole mesh locally until Ctrl-C (what npm start runs)',
    load: async () => (require('./commands/dev') as typeof import('./commands/dev')).dev,
  },
};

export const USAGE = `usage: spine <command> [arguments] [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, { args, summary }]) => `  ${`${name} ${args}`.padEnd(62)} ${summary}`)
  .join('\n')}

\`spine <command> --help\` describes a command.

${COMMON_USAGE}`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  let debug = false;
  try {
    debug = parseSetting('debug', { env: process.env });
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      console.log(USAGE);
      return ExitCode.ok;
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command)
      throw new UsageError(
        `unknown command ${JSON.stringify(name)}; commands: ${Object.keys(COMMANDS).join(', ')} (spine --help)`,
      );
    const code = await (await command.load())(rest);
    return code ?? ExitCode.ok;
  } catch (error) {
    process.stderr.write(`spine: ${describeError(error)}\n`);
    if (debug) console.error(error);
    return exitCodeFor(error);
  }
}

if (require.main === module) {
  // Exits explicitly: idle keep-alive sockets of the Google clients would hold the process open.
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
