/** `npm run docs:settings`: rewrites the README's settings tables from shared/settings/table.ts. */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { COMPONENTS } from '../shared/settings';
import { documentedComponents, renderSettingsDocs } from '../shared/settings/docs';

const readmePath = path.resolve(__dirname, '..', 'README.md');
const before = readFileSync(readmePath, 'utf8');
const after = renderSettingsDocs(before, COMPONENTS);
const missing = COMPONENTS.filter((component) => !documentedComponents(before, COMPONENTS).includes(component));
if (missing.length > 0) {
  process.stderr.write(`README.md has no <!-- settings:…:start/end --> markers for: ${missing.join(', ')}\n`);
  process.exitCode = 1;
}
if (after !== before) writeFileSync(readmePath, after);
process.stdout.write(
  after === before ? 'README.md settings tables are up to date\n' : 'README.md settings tables rewritten\n',
);
