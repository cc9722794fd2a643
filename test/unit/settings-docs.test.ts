import { readFileSync } from 'node:fs';
import path from 'node:path';
import { COMPONENTS, SETTINGS, settingNames } from '../../shared/settings';
import { documentedComponents, renderSettingsDocs, settingsTable } from '../../shared/settings/docs';

const README = path.resolve(__dirname, '../../README.md');

describe("the README's settings tables", () => {
  const readme = readFileSync(README, 'utf8');

  it('has a table for every part that reads settings', () => {
    expect(documentedComponents(readme, COMPONENTS)).toEqual([...COMPONENTS]);
  });

  it('are what the settings table generates (run `npm run docs:settings` after changing it)', () => {
    expect(renderSettingsDocs(readme, COMPONENTS)).toBe(readme);
  });

  it('a setting added to the table changes the generated README', () => {
    const table = settingsTable('gateway');
    for (const name of settingNames('gateway')) expect(table).toContain(`\`${SETTINGS[name].variable}\``);
    const stale = readme.replace('| `SPINE_GATEWAY_HOST` |', '| `SPINE_GATEWAY_HOSTNAME` |');
    expect(stale).not.toBe(readme);
    expect(renderSettingsDocs(stale, COMPONENTS)).toBe(readme);
  });
});
