/**
 * shared/ is the library: it imports nothing from the programs built on it (functions, scheduler,
 * cli, gateway, dashboard), and its modules import each other without a circle. Read from the
 * sources with TypeScript's own import scanner (static imports, `import()`, `require()`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');
const SHARED = path.join(ROOT, 'shared');
const FORBIDDEN = ['functions', 'scheduler', 'cli', 'gateway', 'dashboard'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** The relative imports of a file, resolved to files (`x` → `x.ts` or `x/index.ts`). */
function relativeImports(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles
    .map((imported) => imported.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => {
      const base = path.resolve(path.dirname(file), name);
      for (const candidate of [`${base}.ts`, path.join(base, 'index.ts'), base]) {
        try {
          if (readFileSync(candidate) && candidate.endsWith('.ts')) return candidate;
        } catch {
          // not this candidate
        }
      }
      return base;
    });
}

/** Every circle among the files, each as the list of files around it (a DFS over the import graph). */
function importCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'visiting');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'visiting') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return cycles;
}

const relative = (file: string) => path.relative(ROOT, file);

describe('shared/ import boundaries', () => {
  const files = sourceFiles(SHARED);
  const graph = new Map(files.map((file) => [file, relativeImports(file)]));

  it('finds the library sources and their imports', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(graph.get(path.join(SHARED, 'topology.ts'))).toContain(path.join(SHARED, 'jobs.ts'));
  });

  it(`imports nothing from ${FORBIDDEN.join(', ')}`, () => {
    const offending = [...graph].flatMap(([file, imports]) =>
      imports
        .filter((target) => FORBIDDEN.some((folder) => relative(target).split(path.sep)[0] === folder))
        .map((target) => `${relative(file)} → ${relative(target)}`),
    );
    expect(offending).toEqual([]);
  });

  it('has no import circle among its modules', () => {
    expect(importCycles(graph).map((cycle) => cycle.map(relative).join(' → '))).toEqual([]);
  });

  it('the circle finder finds a circle', () => {
    const circle = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(importCycles(circle)).toEqual([['a', 'b', 'c', 'a']]);
    expect(
      importCycles(
        new Map([
          ['a', ['b']],
          ['b', []],
        ]),
      ),
    ).toEqual([]);
  });
});
