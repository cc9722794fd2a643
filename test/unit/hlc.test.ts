import fc from 'fast-check';
import { compareStamps, formatStamp, HybridLogicalClock, isStamp, parseStamp, type Stamp } from '../../shared/hlc';
import { InvalidArgumentError } from 'super-spine';

/** A wall clock the test moves by hand. */
function manualClock(start: number) {
  let time = start;
  return {
    now: () => time,
    set: (t: number) => {
      time = t;
    },
  };
}

function expectIncreasing(stamps: Stamp[]): void {
  for (let i = 1; i < stamps.length; i++) {
    expect(compareStamps(stamps[i]!, stamps[i - 1]!)).toBeGreaterThan(0);
    expect(stamps[i]! > stamps[i - 1]!).toBe(true);
  }
}

describe('HybridLogicalClock.tick', () => {
  it('follows the wall clock when it moves forward', () => {
    const clock = manualClock(1_000);
    const hlc = new HybridLogicalClock('w', clock.now);
    expect(parseStamp(hlc.tick())).toEqual({ wallTime: 1_000, logical: 0, writerId: 'w' });
    clock.set(2_000);
    expect(parseStamp(hlc.tick())).toEqual({ wallTime: 2_000, logical: 0, writerId: 'w' });
  });

  it('strictly increases while the wall clock stands still', () => {
    const hlc = new HybridLogicalClock('w', () => 5_000);
    const stamps = Array.from({ length: 100 }, () => hlc.tick());
    expectIncreasing(stamps);
    expect(parseStamp(stamps[99]!)).toEqual({ wallTime: 5_000, logical: 99, writerId: 'w' });
  });

  it('strictly increases when the wall clock goes backwards', () => {
    const clock = manualClock(10_000);
    const hlc = new HybridLogicalClock('w', clock.now);
    const first = hlc.tick();
    clock.set(3_000);
    const second = hlc.tick();
    clock.set(9_999);
    const third = hlc.tick();
    expectIncreasing([first, second, third]);
    expect(parseStamp(third).wallTime).toBe(10_000);
    clock.set(10_001);
    expect(parseStamp(hlc.tick())).toEqual({ wallTime: 10_001, logical: 0, writerId: 'w' });
  });

  it('property: any sequence of clock readings gives strictly increasing stamps', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2_000_000_000_000 }), { minLength: 1, maxLength: 60 }),
        (readings) => {
          let i = 0;
          const hlc = new HybridLogicalClock('writer', () => readings[i++ % readings.length]!);
          const stamps = readings.map(() => hlc.tick());
          expectIncreasing(stamps);
          // Never behind the wall clock it has read.
          const maxSoFar = readings.reduce((max, r) => Math.max(max, r), 0);
          expect(parseStamp(stamps[stamps.length - 1]!).wallTime).toBeGreaterThanOrEqual(maxSoFar);
        },
      ),
    );
  });

  it('keeps stamps fixed width when the logical counter overflows', () => {
    const hlc = new HybridLogicalClock('w', () => 7);
    hlc.observe(formatStamp({ wallTime: 7, logical: 999_998, writerId: 'other' }));
    const a = hlc.tick();
    const b = hlc.tick();
    const c = hlc.tick();
    expect(parseStamp(a)).toEqual({ wallTime: 7, logical: 999_999, writerId: 'w' });
    expect(parseStamp(b)).toEqual({ wallTime: 8, logical: 0, writerId: 'w' });
    expect(parseStamp(c)).toEqual({ wallTime: 8, logical: 1, writerId: 'w' });
    for (const stamp of [a, b, c]) {
      expect(stamp).toHaveLength(15 + 1 + 6 + 1 + 1);
      expect(isStamp(stamp)).toBe(true);
    }
    expectIncreasing([a, b, c]);
  });
});

describe('HybridLogicalClock.observe', () => {
  it('makes the next tick newer than a remote stamp from the future', () => {
    const hlc = new HybridLogicalClock('a', () => 1_000);
    const remote = formatStamp({ wallTime: 50_000, logical: 17, writerId: 'z' });
    hlc.tick();
    hlc.observe(remote);
    const next = hlc.tick();
    expect(compareStamps(next, remote)).toBeGreaterThan(0);
    expect(parseStamp(next)).toEqual({ wallTime: 50_000, logical: 18, writerId: 'a' });
  });

  it('is newer than an observed stamp with the same wall time and a higher counter', () => {
    const hlc = new HybridLogicalClock('a', () => 1_000);
    hlc.tick();
    hlc.tick(); // 1000:1
    const remote = formatStamp({ wallTime: 1_000, logical: 40, writerId: 'b' });
    hlc.observe(remote);
    expect(parseStamp(hlc.tick())).toEqual({ wallTime: 1_000, logical: 41, writerId: 'a' });
  });

  it('ignores an observed stamp from the past', () => {
    const clock = manualClock(9_000);
    const hlc = new HybridLogicalClock('a', clock.now);
    const before = hlc.tick();
    hlc.observe(formatStamp({ wallTime: 10, logical: 999_999, writerId: 'b' }));
    const after = hlc.tick();
    expect(parseStamp(after)).toEqual({ wallTime: 9_000, logical: 1, writerId: 'a' });
    expectIncreasing([before, after]);
  });

  it('starts a fresh counter when the wall clock is ahead of both', () => {
    const clock = manualClock(100);
    const hlc = new HybridLogicalClock('a', clock.now);
    hlc.tick();
    clock.set(500);
    hlc.observe(formatStamp({ wallTime: 200, logical: 3, writerId: 'b' }));
    expect(parseStamp(hlc.tick())).toEqual({ wallTime: 500, logical: 0, writerId: 'a' });
  });

  it('refuses something that is not a stamp', () => {
    const hlc = new HybridLogicalClock('a');
    expect(() => hlc.observe('yesterday')).toThrow(InvalidArgumentError);
  });

  it('property: after observing any stamps, the next tick is newer than all of them and than earlier ticks', () => {
    const remote = fc.record({
      wallTime: fc.integer({ min: 0, max: 3_000_000_000_000 }),
      logical: fc.integer({ min: 0, max: 999_999 }),
      writerId: fc.constantFrom('a', 'b', 'zzz', '~'),
    });
    const step = fc.oneof(
      fc.record({ observe: remote }),
      fc.record({ clock: fc.integer({ min: 0, max: 3_000_000_000_000 }) }),
      fc.constant('tick' as const),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const clock = manualClock(1_000);
        const hlc = new HybridLogicalClock('m', clock.now);
        let newest: Stamp | undefined;
        for (const s of steps) {
          if (s === 'tick') {
            const stamp = hlc.tick();
            if (newest !== undefined) expect(compareStamps(stamp, newest)).toBeGreaterThan(0);
            newest = stamp;
          } else if ('observe' in s) {
            const stamp = formatStamp(s.observe);
            hlc.observe(stamp);
            if (newest === undefined || compareStamps(stamp, newest) > 0) newest = stamp;
          } else {
            clock.set(s.clock);
          }
        }
        const last = hlc.tick();
        if (newest !== undefined) expect(compareStamps(last, newest)).toBeGreaterThan(0);
        expect(isStamp(last)).toBe(true);
      }),
    );
  });
});

describe('stamps', () => {
  it('compare by wall time, then counter, then writer id', () => {
    const s = (wallTime: number, logical: number, writerId: string) => formatStamp({ wallTime, logical, writerId });
    expect(compareStamps(s(2, 0, 'a'), s(1, 999_999, 'z'))).toBeGreaterThan(0);
    expect(compareStamps(s(1, 2, 'a'), s(1, 1, 'z'))).toBeGreaterThan(0);
    expect(compareStamps(s(1, 1, 'b'), s(1, 1, 'a'))).toBeGreaterThan(0);
    expect(compareStamps(s(1, 1, 'a'), s(1, 1, 'b'))).toBeLessThan(0);
    expect(compareStamps(s(1, 1, 'a'), s(1, 1, 'a'))).toBe(0);
    // Numeric, not textual, order of the numbers.
    expect(compareStamps(s(10, 0, 'a'), s(9, 0, 'a'))).toBeGreaterThan(0);
    expect(compareStamps(s(1, 10, 'a'), s(1, 9, 'a'))).toBeGreaterThan(0);
  });

  const parsed = fc.record({
    wallTime: fc.integer({ min: 0, max: 999_999_999_999_999 }),
    logical: fc.integer({ min: 0, max: 999_999 }),
    writerId: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }),
  });

  function tupleOrder(a: { wallTime: number; logical: number; writerId: string }, b: typeof a): number {
    if (a.wallTime !== b.wallTime) return a.wallTime < b.wallTime ? -1 : 1;
    if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
    return a.writerId < b.writerId ? -1 : a.writerId > b.writerId ? 1 : 0;
  }

  it('property: the string order of stamps is the clock order', () => {
    fc.assert(
      fc.property(parsed, parsed, (a, b) => {
        const sa = formatStamp(a);
        const sb = formatStamp(b);
        const expected = tupleOrder(a, b);
        expect(Math.sign(compareStamps(sa, sb))).toBe(expected);
        const textual = sa < sb ? -1 : sa > sb ? 1 : 0;
        expect(textual).toBe(expected);
        expect([sb, sa].sort()).toEqual(expected <= 0 ? [sa, sb] : [sb, sa]);
      }),
      { numRuns: 500 },
    );
  });

  it('property: parseStamp(formatStamp(x)) is x, including writer ids with ":" and newlines', () => {
    fc.assert(
      fc.property(parsed, fc.constantFrom('', ':', '\n', ':0:'), (p, extra) => {
        const input = { ...p, writerId: p.writerId + extra };
        const stamp = formatStamp(input);
        expect(isStamp(stamp)).toBe(true);
        expect(parseStamp(stamp)).toEqual(input);
        expect(formatStamp(parseStamp(stamp))).toBe(stamp);
      }),
    );
  });

  it.each([
    '',
    'x',
    '1:2:w',
    '000000000000001:000001:',
    '00000000000001:000001:w',
    '000000000000001:0000001:w',
    '00000000000000a:000001:w',
  ])('refuses %j as a stamp', (text) => {
    expect(isStamp(text)).toBe(false);
    expect(() => parseStamp(text)).toThrow(InvalidArgumentError);
  });

  it('isStamp refuses non-strings', () => {
    expect(isStamp(undefined)).toBe(false);
    expect(isStamp(123)).toBe(false);
  });
});
