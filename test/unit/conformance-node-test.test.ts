import { runNodeWithTsx } from '../helpers/node-process';

/** The totals a `node --test --test-reporter=tap` run prints last (`# tests 94`, `# fail 0`, ...). */
function tapTotals(tap: string): Record<'tests' | 'pass' | 'fail', number> {
  const total = (name: string) => {
    const match = new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tap);
    if (!match) throw new Error(`no "# ${name}" line in the node:test output:\n${tap.slice(-2000)}`);
    return Number(match[1]);
  };
  return { tests: total('tests'), pass: total('pass'), fail: total('fail') };
}

const runNodeTest = (file: string) => runNodeWithTsx(['--test', '--test-reporter=tap', file]);

describe('the conformance suite under node:test', () => {
  it('runs and passes against MemoryStorage and FileSystemStorage', async () => {
    const run = await runNodeTest('test/node-test/conformance.node-test.ts');
    const totals = tapTotals(run.stdout);
    expect({ code: run.code, fail: totals.fail }).toEqual({ code: 0, fail: 0 });
    expect(totals.pass).toBe(totals.tests);
    // Both backends, each with the whole suite: same count, and not a trivially small one.
    expect(totals.tests % 2).toBe(0);
    expect(totals.tests / 2).toBeGreaterThan(40);
    expect(run.stdout).toMatch(/^ok \d+ - NetworkStorage conformance: MemoryStorage$/m);
    expect(run.stdout).toMatch(/^ok \d+ - NetworkStorage conformance: FileSystemStorage$/m);
  });

  it('fails, exiting non-zero, against a backend that reads back wrong content', async () => {
    const run = await runNodeTest('test/node-test/broken-backend.node-test.ts');
    const totals = tapTotals(run.stdout);
    expect(run.code).not.toBe(0);
    expect(totals.fail).toBeGreaterThan(0);
    // The failures are the checks that read contacts; the others still pass.
    expect(totals.pass).toBeGreaterThan(0);
    expect(run.stdout).toMatch(
      /^ +not ok \d+ - round-trips nested content with Maps, Sets, Dates and mergeable collections$/m,
    );
    expect(run.stdout).toMatch(/^ +ok \d+ - stores an empty group and an empty network$/m);
    expect(run.stdout).toContain('ERR_ASSERTION');
  });

  it('imports super-spine/testing with no test globals, and names what is missing when no runner is given', async () => {
    const script = [
      "const { runNetworkStorageConformance } = require('super-spine/testing');",
      "try { runNetworkStorageConformance('x', async () => { throw new Error('setup must not run'); }); }",
      'catch (error) { console.log(`${error.name}: ${error.message}`); }',
    ].join('\n');
    const run = await runNodeWithTsx(['-e', script]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(
      /^TypeError: runNetworkStorageConformance: no describe, it, beforeEach, afterEach given and none is global/,
    );
  });
});
