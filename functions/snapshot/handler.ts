import type { Request, Response } from '@google-cloud/functions-framework';
import type { SnapshotRunState } from '../../shared/backends/materialized-state';
import { InvalidArgumentError, isPermanent, NetworkNotFoundError } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import { takeScheduledSnapshots, type SnapshotRunSummary, type SnapshotSelection } from '../../shared/snapshots';

export interface SnapshotHandlerDependencies {
  state: SnapshotRunState;
  /** Retention: each network snapshotted keeps its newest this many unlabelled snapshots. */
  maxSnapshots: number;
  /** Retention deletes labelled snapshots too (SPINE_PRUNE_LABELLED_SNAPSHOTS); by default they are kept. */
  pruneLabelled?: boolean;
  logger: Logger;
  /** For `networks: 'changed'`; see `DEFAULT_CHANGE_TOLERANCE_MS`. */
  changeToleranceMs?: number;
  /** Tells the client that asked (a `causeId` in the request) that its snapshot exists. */
  announce?: (request: SnapshotRequest, summary: SnapshotRunSummary) => Promise<void>;
}

/** What the snapshot function accepts as its JSON body. */
export interface SnapshotRequest {
  /** Default `'changed'`, what the scheduled job asks for. */
  networks?: SnapshotSelection;
  label?: string;
  /** One network only: a single requested snapshot (with `snapshotId`, at most once per id). */
  networkId?: string;
  snapshotId?: string;
  /** The request event and its writer, when a client asked through the mesh: answered when done. */
  causeId?: string;
  writerId?: string;
}

/** Cloud Scheduler's header naming the slot a run is for (RFC 3339); the same on a retried or doubled delivery. */
export const SCHEDULE_TIME_HEADER = 'x-cloudscheduler-scheduletime';

const FIELDS = new Set(['networks', 'label', 'networkId', 'snapshotId', 'causeId', 'writerId']);

/**
 * The snapshot function: `POST` with a JSON body (`SnapshotRequest`) snapshots networks and
 * applies retention, answering 200 with the run's summary. A run that carries Cloud Scheduler's
 * `X-CloudScheduler-ScheduleTime` names its snapshots after the slot, so a slot fired twice
 * makes one snapshot. Bad input answers 400, an unknown network 404 (nothing is written), and
 * a run in which some network failed 500 with the summary, so the scheduler tries again.
 */
export function createSnapshotHandler(deps: SnapshotHandlerDependencies) {
  const { state, logger } = deps;
  if (!Number.isSafeInteger(deps.maxSnapshots) || deps.maxSnapshots < 1) {
    throw new InvalidArgumentError(
      `maxSnapshots must be a whole number of snapshots, 1 or more, not ${JSON.stringify(deps.maxSnapshots)}`,
    );
  }

  return async function snapshot(req: Request, res: Response): Promise<void> {
    if (req.method !== 'POST') {
      res
        .status(405)
        .set('Allow', 'POST')
        .json(errorBody('INVALID_ARGUMENT', `the snapshot function takes POST, not ${req.method}`));
      return;
    }
    let summary: SnapshotRunSummary;
    let slot: Date | undefined;
    let request: SnapshotRequest;
    try {
      request = parseRequest(req.body);
      slot = parseSlot(req.get(SCHEDULE_TIME_HEADER));
      summary = await takeScheduledSnapshots(state, {
        networks: request.networkId !== undefined ? [request.networkId] : (request.networks ?? 'changed'),
        ...(slot && { slot }),
        ...(request.snapshotId !== undefined && { snapshotId: request.snapshotId }),
        ...(request.label !== undefined && { label: request.label }),
        maxSnapshots: deps.maxSnapshots,
        ...(deps.pruneLabelled !== undefined && { pruneLabelled: deps.pruneLabelled }),
        ...(deps.changeToleranceMs !== undefined && { changeToleranceMs: deps.changeToleranceMs }),
        logger,
      });
    } catch (error) {
      if (error instanceof NetworkNotFoundError) {
        res.status(404).json(errorBody(error.code, error.message));
      } else if (isPermanent(error)) {
        res.status(400).json(errorBody(error.code, error.message));
      } else {
        logger.error('snapshot request failed', { error });
        res.status(500).json(errorBody('INTERNAL', (error as Error).message ?? String(error)));
      }
      return;
    }
    if (summary.failed.length === 0 && request.causeId !== undefined && deps.announce) {
      try {
        await deps.announce(request, summary);
      } catch (error) {
        // Not announced: fail, so the task is retried (the snapshot itself is not taken twice).
        logger.error('announcing the snapshot failed', { error });
        res.status(500).json(errorBody('INTERNAL', (error as Error).message));
        return;
      }
    }
    res.status(summary.failed.length > 0 ? 500 : 200).json({ ...(slot && { slot: slot.toISOString() }), ...summary });
  };
}

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

/**
 * The body as the Functions Framework hands it over: parsed JSON for `application/json`, or raw
 * bytes or text otherwise (Cloud Scheduler sends `application/octet-stream` unless told).
 */
function parseRequest(body: unknown): SnapshotRequest {
  let value = body;
  if (Buffer.isBuffer(value)) value = value.toString('utf8');
  if (typeof value === 'string') {
    if (value.trim() === '') value = {};
    else {
      try {
        value = JSON.parse(value);
      } catch {
        throw new InvalidArgumentError('the request body must be a JSON object');
      }
    }
  }
  if (value === undefined || value === null) value = {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new InvalidArgumentError('the request body must be a JSON object');
  const request = value as Record<string, unknown>;
  const unknown = Object.keys(request).filter((key) => !FIELDS.has(key));
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; the body takes ${[...FIELDS].join(', ')}`,
    );
  const { networks, label, networkId, snapshotId } = request;
  if (
    networks !== undefined &&
    networks !== 'all' &&
    networks !== 'changed' &&
    !(Array.isArray(networks) && networks.every((id) => typeof id === 'string'))
  ) {
    throw new InvalidArgumentError(
      `networks must be "all", "changed" or a list of network ids, not ${JSON.stringify(networks)}`,
    );
  }
  if (label !== undefined && typeof label !== 'string') throw new InvalidArgumentError('label must be a string');
  if (networkId !== undefined && typeof networkId !== 'string')
    throw new InvalidArgumentError('networkId must be a string');
  if (snapshotId !== undefined && typeof snapshotId !== 'string')
    throw new InvalidArgumentError('snapshotId must be a string');
  if (networkId !== undefined && networks !== undefined)
    throw new InvalidArgumentError('give networkId (one snapshot) or networks, not both');
  if (snapshotId !== undefined && networkId === undefined)
    throw new InvalidArgumentError('snapshotId names one snapshot and needs networkId');
  for (const key of ['causeId', 'writerId'] as const) {
    if (request[key] !== undefined && (typeof request[key] !== 'string' || request[key] === ''))
      throw new InvalidArgumentError(`${key} must be a non-empty string`);
  }
  return request as SnapshotRequest;
}

function parseSlot(header: string | undefined): Date | undefined {
  if (header === undefined || header === '') return undefined;
  const time = Date.parse(header);
  if (Number.isNaN(time))
    throw new InvalidArgumentError(
      `X-CloudScheduler-ScheduleTime must be an RFC 3339 time, not ${JSON.stringify(header)}`,
    );
  return new Date(time);
}
