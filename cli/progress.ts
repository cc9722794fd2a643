/** A progress bar on stderr for long work, shown only to people (stderr is a terminal) and only when the work is large. */
import { SingleBar, Presets } from 'cli-progress';

/** Below this many groups (and contacts) the work is quick: no bar. */
export const PROGRESS_MIN_GROUPS = 50;
export const PROGRESS_MIN_CONTACTS = 1_000;

export interface Progress {
  increment(): void;
  update(done: number): void;
  stop(): void;
}

/** A bar on stderr, or `undefined` when none is shown (not a terminal, small work, or --json). */
export function startProgress(what: string, total: number, contacts: number, json = false): Progress | undefined {
  const large = total >= PROGRESS_MIN_GROUPS || contacts >= PROGRESS_MIN_CONTACTS;
  if (!process.stderr.isTTY || !large || json) return undefined;
  const bar = new SingleBar(
    {
      format: `${what} [{bar}] {percentage}% | {value}/{total} groups | {eta_formatted} left`,
      stream: process.stderr,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return { increment: () => bar.increment(), update: (done) => bar.update(done), stop: () => bar.stop() };
}

export function countContacts(groups: Iterable<{ contacts: Map<string, unknown> }>): number {
  let contacts = 0;
  for (const group of groups) contacts += group.contacts.size;
  return contacts;
}
