import type { SnapshotRunState, Snapshotter } from './backends/materialized-state';
import { DEFAULT_CHANGE_TOLERANCE_MS } from './backends/snapshot-stream';
import { InvalidArgumentError, NetworkNotFoundError, SnapshotNotFoundError } from './errors';
import { validateNetworkId, validateSnapshotId } from './ids';
import { createLogger, type Logger } from './log';
import { parseSettings } from './settings';

/** SPINE_PRUNE_LABELLED_SNAPSHOTS (default false): whether the snapshot function's retention deletes labelled snapshots too. */
export function loadRetentionSettings(env: Record<string, string | undefined> = process.env): {
  pruneLabelled: boolean;
} {
  return { pruneLabelled: parseSettings('functions', { env }).pruneLabelledSnapshots };
}

/** Which networks a snapshot run covers: every one, those changed since their newest snapshot, or these. */
export type SnapshotSelection = 'all' | 'changed' | string[];

export interface ScheduledSnapshotOptions {
  networks: SnapshotSelection;
  /**
   * The schedule slot the run is for (Cloud Scheduler's `X-CloudScheduler-ScheduleTime`). The
   * snapshot id is derived from it, so a slot delivered twice makes one snapshot per network.
   */
  slot?: Date;
  /** An explicit snapshot id (per network); takes the place of the slot's. */
  snapshotId?: string;
  /** Retention: each network covered keeps its newest this many unlabelled snapshots. */
  maxSnapshots: number;
  /** Retention deletes labelled snapshots too (counted with the others); by default someone labelled them to keep them. */
  pruneLabelled?: boolean;
  label?: string;
  /** For `'changed'`: see `DEFAULT_CHANGE_TOLERANCE_MS`. */
  changeToleranceMs?: number;
  logger?: Logger;
}

export interface SnapshotRunSummary {
  /** Snapshots this run made. */
  created: Array<{ networkId: string; snapshotId: string }>;
  /** Networks left as they were: unchanged, deleted meanwhile, or their snapshot of this id existed. */
  skipped: string[];
  /** Snapshots deleted by retention, per network, oldest first. */
  pruned: Array<{ networkId: string; snapshotIds: string[] }>;
  /** Networks whose snapshot or retention failed; the others were still done. */
  failed: Array<{ networkId: string; error: string }>;
}

/** The id of the snapshot taken for a schedule slot, to the minute (Cloud Scheduler's granularity): `slot-20261121T0600Z`. */
export function slotSnapshotId(slot: Date): string {
  if (!(slot instanceof Date) || Number.isNaN(slot.getTime()))
    throw new InvalidArgumentError('slot must be a valid Date');
  const iso = slot.toISOString(); // 2026-11-21T06:00:00.000Z
  return `slot-${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
}

/**
 * One run of the snapshot job: snapshots the selected networks one after another (each is read
 * group by group, so one network at a time bounds memory), then applies retention to each.
 * A failure on one network is reported in `failed` and does not stop the others; an unknown
 * network in an explicit list fails the whole run up front with `NetworkNotFoundError`.
 */
export async function takeScheduledSnapshots(
  state: SnapshotRunState,
  options: ScheduledSnapshotOptions,
): Promise<SnapshotRunSummary> {
  const settings = resolveOptions(options);
  const log = options.logger ?? createLogger('snapshots');
  const listed = !Array.isArray(settings.networks);
  const networkIds: string[] = Array.isArray(settings.networks) ? settings.networks : await state.listNetworks();
  if (!listed) {
    for (const networkId of networkIds) if (!(await state.exists(networkId))) throw new NetworkNotFoundError(networkId);
  }
  const snapshotId = settings.snapshotId ?? (settings.slot ? slotSnapshotId(settings.slot) : undefined);
  const summary: SnapshotRunSummary = { created: [], skipped: [], pruned: [], failed: [] };
  log.info('snapshot run started', {
    networks: listed ? settings.networks : networkIds.length,
    count: networkIds.length,
    snapshotId,
  });

  for (const [index, networkId] of networkIds.entries()) {
    try {
      const started = Date.now();
      const result =
        settings.networks === 'changed'
          ? await state.snapshotIfChanged(networkId, settings.label, {
              snapshotId,
              changeToleranceMs: settings.changeToleranceMs,
            })
          : await state.writeSnapshot(networkId, settings.label, { snapshotId });
      if (result?.created) {
        summary.created.push({ networkId, snapshotId: result.info.id });
        log.info('snapshot taken', {
          networkId,
          snapshotId: result.info.id,
          size: result.info.size,
          ms: Date.now() - started,
          done: index + 1,
          of: networkIds.length,
        });
      } else {
        summary.skipped.push(networkId);
        log.debug('snapshot skipped', {
          networkId,
          reason: result ? 'exists' : 'unchanged',
          done: index + 1,
          of: networkIds.length,
        });
      }
      const pruned = await applyRetention(state, networkId, settings.maxSnapshots, settings.pruneLabelled);
      if (pruned.length > 0) summary.pruned.push({ networkId, snapshotIds: pruned });
    } catch (error) {
      if (listed && error instanceof NetworkNotFoundError) {
        summary.skipped.push(networkId); // deleted since it was listed
        continue;
      }
      summary.failed.push({ networkId, error: (error as Error).message });
      log.error('snapshot failed', { networkId, error });
    }
  }
  log.info('snapshot run finished', {
    created: summary.created.length,
    skipped: summary.skipped.length,
    pruned: summary.pruned.length,
    failed: summary.failed.length,
  });
  return summary;
}

/**
 * Deletes the snapshots of the network past the newest `keep`, oldest first; labelled snapshots
 * are neither deleted nor counted unless `pruneLabelled`. Returns the ids deleted.
 */
export async function applyRetention(
  state: Snapshotter,
  networkId: string,
  keep: number,
  pruneLabelled = false,
): Promise<string[]> {
  if (pruneLabelled) return state.pruneSnapshots(networkId, keep);
  const unlabelled = (await state.listSnapshots(networkId)).filter(
    (info) => info.label === undefined || info.label === '',
  );
  const deleted: string[] = [];
  for (const info of unlabelled.slice(keep).reverse()) {
    try {
      await state.deleteSnapshot(networkId, info.id);
      deleted.push(info.id);
    } catch (error) {
      // Another pruner deleted it first: not reported twice.
      if (!(error instanceof SnapshotNotFoundError)) throw error;
    }
  }
  return deleted;
}

interface ResolvedOptions {
  networks: 'all' | 'changed' | string[];
  slot?: Date;
  snapshotId?: string;
  maxSnapshots: number;
  pruneLabelled: boolean;
  label?: string;
  changeToleranceMs: number;
}

function resolveOptions(options: ScheduledSnapshotOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') throw new InvalidArgumentError('snapshot run options must be an object');
  const {
    networks,
    slot,
    snapshotId,
    maxSnapshots,
    label,
    changeToleranceMs = DEFAULT_CHANGE_TOLERANCE_MS,
    pruneLabelled = false,
  } = options;
  if (typeof pruneLabelled !== 'boolean')
    throw new InvalidArgumentError(`pruneLabelled must be true or false, not ${JSON.stringify(pruneLabelled)}`);
  let selection: ResolvedOptions['networks'];
  if (networks === 'all' || networks === 'changed') selection = networks;
  else if (Array.isArray(networks)) selection = [...new Set(networks.map((id) => validateNetworkId(id)))];
  else
    throw new InvalidArgumentError(
      `networks must be "all", "changed" or a list of network ids, not ${JSON.stringify(networks)}`,
    );
  if (slot !== undefined && (!(slot instanceof Date) || Number.isNaN(slot.getTime())))
    throw new InvalidArgumentError('slot must be a valid Date');
  if (snapshotId !== undefined) validateSnapshotId(snapshotId);
  if (!Number.isSafeInteger(maxSnapshots) || maxSnapshots < 1) {
    throw new InvalidArgumentError(
      `maxSnapshots must be a whole number of snapshots, 1 or more, not ${JSON.stringify(maxSnapshots)}`,
    );
  }
  if (label !== undefined && typeof label !== 'string') throw new InvalidArgumentError('label must be a string');
  if (typeof changeToleranceMs !== 'number' || !Number.isFinite(changeToleranceMs) || changeToleranceMs < 0) {
    throw new InvalidArgumentError(
      `changeToleranceMs must be a number of milliseconds, 0 or more, not ${JSON.stringify(changeToleranceMs)}`,
    );
  }
  return { networks: selection, slot, snapshotId, maxSnapshots, pruneLabelled, label, changeToleranceMs };
}
