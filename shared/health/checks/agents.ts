import type { Logger } from '../../log';
import type { GroupState, NetworkStorage } from '../../model';
import { AGENTS_GROUP, REGISTRY_NETWORK, type Heartbeat } from '../../system';
import { type AgentHealth, describeError } from '../report';

function isHeartbeat(value: unknown): value is Heartbeat {
  const beat = value as Partial<Heartbeat> | null;
  return (
    !!beat &&
    typeof beat === 'object' &&
    typeof beat.agentId === 'string' &&
    typeof beat.status === 'string' &&
    typeof beat.at === 'string' &&
    !Number.isNaN(Date.parse(beat.at))
  );
}

/** Every agent in the registry with its last heartbeat; entries that are not heartbeats are skipped (and logged). */
export async function checkAgents(
  state: Pick<NetworkStorage, 'loadGroupState'>,
  offlineAfterMs: number,
  now: Date,
  logger?: Logger,
): Promise<{ agents: AgentHealth[]; error?: string }> {
  let registry: GroupState | null;
  try {
    registry = await state.loadGroupState(REGISTRY_NETWORK, AGENTS_GROUP);
  } catch (error) {
    return { agents: [], error: `the agent registry could not be read: ${describeError(error)}` };
  }
  const agents: AgentHealth[] = [];
  for (const [contactId, contact] of registry?.contacts ?? []) {
    if (!isHeartbeat(contact.content)) {
      logger?.warn('agent registry entry is not a heartbeat', { contactId });
      continue;
    }
    const beat = contact.content;
    // A clock ahead of ours makes a heartbeat from the future: it is as fresh as can be.
    const ageMs = Math.max(0, now.getTime() - Date.parse(beat.at));
    agents.push({
      agentId: contactId,
      status: beat.status,
      lastHeartbeat: new Date(beat.at).toISOString(),
      ageMs,
      online: ageMs <= offlineAfterMs,
    });
  }
  return { agents: agents.sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0)) };
}
