/**
 * Items ordered by the time they are due (ties in insertion order), for a queue with many
 * scheduled tasks. Removal is lazy: an entry whose item `isCurrent` rejects (deleted,
 * rescheduled, already running) is skipped when it reaches the top.
 */
export class DueHeap<T> {
  private readonly entries: Array<{ dueAt: number; seq: number; item: T; stamp: number }> = [];
  private seq = 0;

  constructor(private readonly isCurrent: (item: T, stamp: number) => boolean) {}

  push(item: T, dueAt: number, stamp: number): void {
    this.entries.push({ dueAt, seq: this.seq++, item, stamp });
    this.siftUp(this.entries.length - 1);
  }

  /** The earliest current item and its due time, without removing it. */
  peek(): { item: T; dueAt: number } | undefined {
    for (;;) {
      const top = this.entries[0];
      if (!top) return undefined;
      if (this.isCurrent(top.item, top.stamp)) return top;
      this.removeTop();
    }
  }

  pop(): T | undefined {
    const top = this.peek();
    if (top) this.removeTop();
    return top?.item;
  }

  clear(): void {
    this.entries.length = 0;
  }

  private removeTop(): void {
    const last = this.entries.pop();
    if (last && this.entries.length > 0) {
      this.entries[0] = last;
      this.siftDown(0);
    }
  }

  private before(a: number, b: number): boolean {
    const x = this.entries[a]!;
    const y = this.entries[b]!;
    return x.dueAt < y.dueAt || (x.dueAt === y.dueAt && x.seq < y.seq);
  }

  private swap(a: number, b: number): void {
    const x = this.entries[a]!;
    this.entries[a] = this.entries[b]!;
    this.entries[b] = x;
  }

  private siftUp(index: number): void {
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(index, parent)) return;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(index: number): void {
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      if (left < this.entries.length && this.before(left, smallest)) smallest = left;
      if (right < this.entries.length && this.before(right, smallest)) smallest = right;
      if (smallest === index) return;
      this.swap(index, smallest);
      index = smallest;
    }
  }
}
