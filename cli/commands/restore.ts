/** `spine restore`: a network as it was at an instant, from its snapshots and the event archive. */
import { InvalidArgumentError } from '../../shared/errors';
import type { RestoreSummary } from '../../shared/history/restore';
import { validateNetworkId } from '../../shared/ids';
import { withSpine } from '../connection';
import { UsageError } from '../errors';
import { printJson } from '../output';
import { parseCommand } from '../options';

export const RESTORE_USAGE = `usage: spine restore <network> --at T [--as <new-network>] [--json]

  Puts the network back as it was at T (ISO 8601, e.g. 2026-12-07T10:42:00Z): its newest snapshot
  taken at or before T, plus the archived events after that snapshot up to T, applied as the
  materialize function applies them. Without --as the result replaces the live network, like
  snapshot restore (groups not in it are removed); with --as it goes into a new network and the
  live one is left alone (--as must not exist). Nothing is written when an archive object is
  corrupt or missing, T is in the future, or T is before the archive begins with no snapshot then.
  Events reach the archive about a second after they are made (spine dev's archiver).
  --at T           the instant to restore (required)
  --as NETWORK     restore into this new network instead of replacing the live one`;

/** The --at value: an ISO 8601 time, else a clear error (exit 4, a value the restore cannot take). */
function restorePoint(raw: string): string {
  if (!/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw) || Number.isNaN(Date.parse(raw)))
    throw new InvalidArgumentError(
      `--at must be an ISO 8601 time such as 2026-12-07T10:42:00Z, not ${JSON.stringify(raw)}`,
    );
  return new Date(raw).toISOString();
}

export async function restore(argv: string[]): Promise<void> {
  const { positionals, values, common, help } = parseCommand(argv, {
    usage: RESTORE_USAGE,
    positionals: ['network'],
    options: { at: { type: 'string' }, as: { type: 'string' } },
  });
  if (help) return void console.log(RESTORE_USAGE);
  const [network] = positionals as [string];
  validateNetworkId(network);
  if (values.at === undefined)
    throw new UsageError('restore needs --at <ISO 8601 time>, e.g. --at 2026-12-07T10:42:00Z');
  const at = restorePoint(values.at);
  if (values.as !== undefined) validateNetworkId(values.as);

  const summary = await withSpine(common, (spine) =>
    spine.restoreNetwork(network, { at, ...(values.as !== undefined ? { as: values.as } : {}) }),
  );
  if (common.json) return printJson(summaryJson(summary));
  console.log(describe(summary));
}

function summaryJson(summary: RestoreSummary) {
  return {
    network: summary.sourceNetworkId,
    restoredInto: summary.networkId,
    at: summary.at.toISOString(),
    snapshot: summary.snapshot
      ? { id: summary.snapshot.id, createdAt: summary.snapshot.createdAt.toISOString() }
      : null,
    eventsApplied: summary.eventsApplied,
    groups: summary.groups,
  };
}

function describe(summary: RestoreSummary): string {
  const into = summary.networkId === summary.sourceNetworkId ? '' : ` into ${summary.networkId}`;
  const from = summary.snapshot
    ? `snapshot ${summary.snapshot.id} (${summary.snapshot.createdAt.toISOString()})`
    : "the archive's beginning";
  return (
    `restored ${summary.sourceNetworkId} as of ${summary.at.toISOString()}${into}: ` +
    `${from} plus ${summary.eventsApplied} archived event${summary.eventsApplied === 1 ? '' : 's'}, ` +
    `${summary.groups} group${summary.groups === 1 ? '' : 's'}`
  );
}
