/**
 * Loads one module and prints, as JSON, the npm packages that loading it pulled in, how many
 * modules it loaded and how long it took. Run in a fresh process: `node --import tsx test/helpers/print-loaded-packages.ts super-spine/memory`.
 * Records resolutions through a module hook (covers `require` and `import`) and `require.cache`.
 */
import { registerHooks } from 'node:module';

const resolved = new Set<string>();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    resolved.add(result.url);
    return result;
  },
});

const specifier = process.argv[2];
if (!specifier) throw new Error('usage: print-loaded-packages.ts <module specifier>');
const cachedBefore = new Set(Object.keys(require.cache));
const start = performance.now();
require(specifier);
const importMs = performance.now() - start;

const packageOf = (file: string) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(decodeURIComponent(file))?.[1];
const packages = new Set(
  [...resolved, ...Object.keys(require.cache)].map(packageOf).filter((name) => name !== undefined),
);
// Modules the import added (project files and npm package files alike), the measure of its size.
const modules = Object.keys(require.cache).filter((file) => !cachedBefore.has(file)).length;
process.stdout.write(JSON.stringify({ specifier, importMs, modules, packages: [...packages].sort() }));
