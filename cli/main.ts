/** `spine`: the command line of Super Spine. Each command lives in `cli/commands/<name>.ts`. */
import { dev, DEV_USAGE } from './commands/dev';

const USAGE = `usage: spine <command> [options]

commands:
  dev   start the whole mesh locally and keep it running until Ctrl-C (what npm start runs)

${DEV_USAGE}`;

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case 'dev':
      return dev(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      console.error(`spine: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      process.exitCode = 2;
  }
}

main().catch((error: Error) => {
  console.error(`spine: ${error.message}`);
  process.exitCode = 1;
});
