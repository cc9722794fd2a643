/** `spine heartbeat`: tells the agent registry an agent is alive. */
import { validateContactId } from '../../shared/ids';
import { withSpine } from '../connection';
import { printJson } from '../output';
import { parseCommand } from '../options';

export const HEARTBEAT_USAGE = `usage: spine heartbeat <agentId> [status] [--wait]

  Records that the agent is alive with a free-form status (default "ok"); the health report
  lists it, offline once its last heartbeat is older than SPINE_HEALTH_OFFLINE_AFTER_MS.
  --wait returns once the heartbeat is materialized (so health sees it at once).`;

export async function heartbeat(argv: string[]): Promise<void> {
  const { positionals, values, common, help } = parseCommand(argv, {
    usage: HEARTBEAT_USAGE,
    positionals: ['agentId', 'status?'],
    options: { wait: { type: 'boolean' } },
  });
  if (help) return void console.log(HEARTBEAT_USAGE);
  const [agentId, status = 'ok'] = positionals as [string, string?];
  validateContactId(agentId);
  const wait = values.wait ? 'materialized' : 'accepted';
  await withSpine(common, (spine) => spine.heartbeat(agentId, status, { wait }));
  if (common.json) printJson({ agentId, status, wait });
  else console.log(`heartbeat ${agentId} ${JSON.stringify(status)} ${wait}`);
}
