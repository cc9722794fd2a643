/**
 * Networks the mesh keeps for itself. Agents' heartbeats live in the registry; the health job
 * writes its canary to the canary network. Both are ordinary networks, so the same pipeline
 * (events, materialize, state) carries them.
 */
export const REGISTRY_NETWORK = 'spine-registry';
export const AGENTS_GROUP = 'agents';
export const CANARY_NETWORK = 'spine-canary';
export const CANARY_GROUP = 'canary';

/** An agent's heartbeat as stored in the registry (contact id = agent id). */
export interface Heartbeat {
  agentId: string;
  status: string;
  /** ISO time the agent sent it. */
  at: string;
}

/** An agent is offline when its last heartbeat is older than this (5 minutes). */
export const DEFAULT_OFFLINE_AFTER_MS = 5 * 60 * 1000;
