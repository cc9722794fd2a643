import * as functions from '@google-cloud/functions-framework';
import { EventType } from '../../shared/events/types';
import { loadRetentionSettings } from '../../shared/snapshots';
import { runtime } from '../runtime';
import { createSnapshotHandler } from './handler';

// Built at load, so a misconfiguration fails the instance's start instead of every request.
const current = runtime();
const handler = createSnapshotHandler({
  state: current.state,
  maxSnapshots: current.settings.maxSnapshots,
  pruneLabelled: loadRetentionSettings(process.env).pruneLabelled,
  logger: current.logger.child({ function: 'snapshot' }),
  // The acknowledgement a client's saveSnapshot waits for, like any write's.
  // Also when a repeated request found the snapshot already there.
  announce: (request) =>
    current.changes.publish([
      {
        type: EventType.NetworkChanged,
        data: {
          networkId: request.networkId!,
          kind: 'updated',
          causeId: request.causeId!,
          ...(request.writerId ? { writerId: request.writerId } : {}),
        },
      },
    ]),
});

functions.http('snapshot', (req, res) => handler(req, res));
