/**
 * In-process locks keyed by string. Writers to the same key run one after another; a
 * read/write lock lets many group-level operations run while a network-level one waits.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

export class KeyedReadWriteLock {
  private readonly states = new Map<
    string,
    { readers: number; writer: boolean; queue: Array<{ write: boolean; wake: () => void }> }
  >();

  read<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.acquire(key, false, task);
  }

  write<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.acquire(key, true, task);
  }

  private async acquire<T>(key: string, write: boolean, task: () => Promise<T>): Promise<T> {
    let state = this.states.get(key);
    if (!state) {
      state = { readers: 0, writer: false, queue: [] };
      this.states.set(key, state);
    }
    const s = state;
    const free = write ? !s.writer && s.readers === 0 && s.queue.length === 0 : !s.writer && s.queue.length === 0;
    if (!free) await new Promise<void>((wake) => s.queue.push({ write, wake }));
    else if (write) s.writer = true;
    else s.readers += 1;
    try {
      return await task();
    } finally {
      if (write) s.writer = false;
      else s.readers -= 1;
      this.wakeNext(key, s);
    }
  }

  private wakeNext(
    key: string,
    s: { readers: number; writer: boolean; queue: Array<{ write: boolean; wake: () => void }> },
  ): void {
    while (s.queue.length > 0 && !s.writer) {
      const next = s.queue[0]!;
      if (next.write) {
        if (s.readers > 0) break;
        s.queue.shift();
        s.writer = true;
        next.wake();
        break;
      }
      s.queue.shift();
      s.readers += 1;
      next.wake();
    }
    if (!s.writer && s.readers === 0 && s.queue.length === 0) this.states.delete(key);
  }
}
