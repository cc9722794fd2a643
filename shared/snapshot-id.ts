import { randomBytes } from 'node:crypto';

let lastTime = 0;
let counter = 0;

/**
 * A snapshot id that sorts in creation order within a process and is unique across processes:
 * milliseconds and a per-millisecond counter (base 36, fixed width), then random bits.
 */
export function newSnapshotId(now = Date.now()): string {
  if (now <= lastTime) {
    counter += 1;
  } else {
    lastTime = now;
    counter = 0;
  }
  const time = lastTime.toString(36).padStart(9, '0');
  const sequence = counter.toString(36).padStart(4, '0');
  return `${time}-${sequence}-${randomBytes(5).toString('hex')}`;
}
