/**
 * The README's settings tables, rendered from the table: one per part, between
 * `<!-- settings:<part>:start -->` and `<!-- settings:<part>:end -->`. `npm run docs:settings`
 * rewrites them; test/unit/settings-docs.test.ts fails when the README differs.
 */
import { SETTINGS, type Component, type SettingSpec } from './table';
import { settingNames } from './parse';

/** The default as a person reads it. */
export function shownDefault(setting: SettingSpec<unknown>): string {
  if (setting.shownDefault !== undefined) return setting.shownDefault;
  if (setting.default === undefined) return '';
  return `\`${typeof setting.default === 'string' ? setting.default : JSON.stringify(setting.default)}\``;
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** The markdown table of one part's settings. */
export function settingsTable(component: Component): string {
  const rows = settingNames(component).map((name) => {
    const setting = SETTINGS[name] as SettingSpec<unknown>;
    const flag = setting.flag ? `\`--${setting.flag}${setting.flagArgument ? ` ${setting.flagArgument}` : ''}\`` : '';
    return `| \`${setting.variable}\` | ${flag} | ${cell(shownDefault(setting))} | ${cell(setting.description)} |`;
  });
  return ['| variable | flag | default | what |', '|---|---|---|---|', ...rows].join('\n');
}

function markers(component: Component): { start: string; end: string } {
  return { start: `<!-- settings:${component}:start -->`, end: `<!-- settings:${component}:end -->` };
}

/** The README with every settings section regenerated (a part may appear more than once); text outside the markers is kept. */
export function renderSettingsDocs(readme: string, components: readonly Component[]): string {
  let text = readme;
  for (const component of components) {
    const { start, end } = markers(component);
    const section = new RegExp(`${escapeRegExp(start)}[\\s\\S]*?${escapeRegExp(end)}`, 'g');
    text = text.replace(section, () => `${start}\n${settingsTable(component)}\n${end}`);
  }
  return text;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The parts whose markers the README holds. */
export function documentedComponents(readme: string, components: readonly Component[]): Component[] {
  return components.filter(
    (component) => readme.includes(markers(component).start) && readme.includes(markers(component).end),
  );
}
