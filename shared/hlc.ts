import { InvalidArgumentError } from './errors';

/**
 * Hybrid logical clock (Kulkarni et al.): stamps that follow wall time, never go backwards,
 * and order causally related writes even when clocks drift. A stamp is a string that sorts
 * lexicographically in clock order: `wall:logical:writer`, wall and logical zero-padded,
 * ties broken by writer id.
 */
export type Stamp = string;

const WALL_DIGITS = 15;
const LOGICAL_DIGITS = 6;
const MAX_LOGICAL = 10 ** LOGICAL_DIGITS - 1;

export interface ParsedStamp {
  wallTime: number;
  logical: number;
  writerId: string;
}

export function formatStamp({ wallTime, logical, writerId }: ParsedStamp): Stamp {
  return `${String(wallTime).padStart(WALL_DIGITS, '0')}:${String(logical).padStart(LOGICAL_DIGITS, '0')}:${writerId}`;
}

const STAMP_PATTERN = new RegExp(`^(\\d{${WALL_DIGITS}}):(\\d{${LOGICAL_DIGITS}}):(.+)$`, 's');

export function parseStamp(stamp: Stamp): ParsedStamp {
  const match = STAMP_PATTERN.exec(stamp);
  if (!match) throw new InvalidArgumentError(`not a clock stamp: ${JSON.stringify(stamp)}`);
  return { wallTime: Number(match[1]), logical: Number(match[2]), writerId: match[3]! };
}

export function isStamp(value: unknown): value is Stamp {
  return typeof value === 'string' && STAMP_PATTERN.test(value);
}

/** Negative when `a` is older than `b`, positive when newer, 0 when the same stamp. */
export function compareStamps(a: Stamp, b: Stamp): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class HybridLogicalClock {
  private wallTime = 0;
  private logical = 0;

  constructor(
    readonly writerId: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** A stamp newer than every stamp this clock issued or observed. */
  tick(): Stamp {
    const physical = this.now();
    if (physical > this.wallTime) {
      this.wallTime = physical;
      this.logical = 0;
    } else {
      this.advanceLogical();
    }
    return formatStamp({ wallTime: this.wallTime, logical: this.logical, writerId: this.writerId });
  }

  /** Takes a stamp seen from another writer into account, so later ticks are newer than it. */
  observe(stamp: Stamp): void {
    const remote = parseStamp(stamp);
    const physical = this.now();
    const wall = Math.max(this.wallTime, remote.wallTime, physical);
    if (wall === this.wallTime && wall === remote.wallTime) this.logical = Math.max(this.logical, remote.logical);
    else if (wall === remote.wallTime) this.logical = remote.logical;
    else if (wall !== this.wallTime) this.logical = -1;
    this.wallTime = wall;
    // The next tick increments past what was observed.
  }

  private advanceLogical(): void {
    if (this.logical >= MAX_LOGICAL) {
      // Keep stamps fixed-width (and so sortable) by borrowing a millisecond.
      this.wallTime += 1;
      this.logical = 0;
    } else {
      this.logical += 1;
    }
  }
}
