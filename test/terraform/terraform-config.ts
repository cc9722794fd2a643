import { getExpressionAst, parse, type TFExpressionSyntaxTree } from '@cdktf/hcl2json';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The Terraform files of a folder, parsed with HashiCorp's HCL parser (@cdktf/hcl2json), and a
 * small evaluator for the expressions the deployment uses: variables (defaults or overrides),
 * locals, `each`, references between resources, string templates, indexing and a handful of
 * functions. Anything else throws, naming the expression: the drift test must never guess.
 *
 * A reference to a resource argument set in the configuration evaluates to that argument (Terraform
 * knows it at plan time); a reference to anything else (an id, an email, a URL) is a `Ref` that
 * names the resource instance and attribute.
 */

type ExpressionNode = TFExpressionSyntaxTree.ExpressionType;

export class Ref {
  constructor(
    /** `type.name` or `type.name["key"]`; data sources as `data.type.name`. */
    readonly address: string,
    /** The attribute path after the address, e.g. `email` or `service_config[0].uri`. */
    readonly attribute: string,
  ) {}
  toString(): string {
    return `\${${this.address}.${this.attribute}}`;
  }
}

/** A string that interpolates values known only after apply. */
export class Template {
  constructor(readonly parts: Array<string | Ref>) {}
  toString(): string {
    return this.parts.map(String).join('');
  }
}

export type Value = string | number | boolean | null | Value[] | { [key: string]: Value } | Ref | Template;
type RawJson = string | number | boolean | null | RawJson[] | { [key: string]: RawJson };
type RawBlock = { [key: string]: RawJson };

export interface ResourceInstance {
  type: string;
  name: string;
  /** The for_each key or count index, when the resource has one. */
  key?: string | number;
  address: string;
  block: RawBlock;
  each?: { key: string; value: Value };
}

interface Scope {
  each?: { key: string; value: Value };
  count?: number;
  /** Variables of enclosing for expressions. */
  symbols?: Record<string, Value>;
}

class ResourceGroup {
  constructor(readonly type: string, readonly name: string) {}
}

export class TerraformError extends Error {}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Ref) && !(value instanceof Template);

export class TerraformConfig {
  private readonly instanceCache = new Map<string, ResourceInstance[]>();

  private constructor(
    private readonly resourcesByType: Record<string, Record<string, RawBlock>>,
    private readonly dataByType: Record<string, Record<string, RawBlock>>,
    private readonly variableBlocks: Record<string, RawBlock>,
    private readonly locals: Record<string, RawJson>,
    private readonly overrides: Record<string, Value>,
    /** Every file's text, for checks on the source as written. */
    readonly sources: Record<string, string>,
  ) {}

  /** Parses every `.tf` file of `dir`; `variables` override defaults (a variable without either throws when used). */
  static async load(dir: string, variables: Record<string, Value> = {}): Promise<TerraformConfig> {
    const files = (await readdir(dir)).filter((file) => file.endsWith('.tf')).sort();
    if (files.length === 0) throw new TerraformError(`no .tf files in ${dir}`);
    const resources: Record<string, Record<string, RawBlock>> = {};
    const data: Record<string, Record<string, RawBlock>> = {};
    const variableBlocks: Record<string, RawBlock> = {};
    const locals: Record<string, RawJson> = {};
    const sources: Record<string, string> = {};
    const addBlocks = (target: Record<string, Record<string, RawBlock>>, parsed: unknown, file: string) => {
      for (const [type, byName] of Object.entries((parsed ?? {}) as Record<string, Record<string, RawBlock[]>>)) {
        for (const [name, [block]] of Object.entries(byName)) {
          target[type] ??= {};
          if (target[type]![name]) throw new TerraformError(`${type}.${name} is declared twice (again in ${file})`);
          target[type]![name] = block!;
        }
      }
    };
    for (const file of files) {
      const text = await readFile(path.join(dir, file), 'utf8');
      sources[file] = text;
      const parsed = (await parse(file, text)) as Record<string, unknown>;
      addBlocks(resources, parsed.resource, file);
      addBlocks(data, parsed.data, file);
      for (const [name, [block]] of Object.entries((parsed.variable ?? {}) as Record<string, RawBlock[]>)) variableBlocks[name] = block!;
      for (const group of (parsed.locals ?? []) as Array<Record<string, RawJson>>) {
        for (const [name, value] of Object.entries(group)) {
          if (name in locals) throw new TerraformError(`local.${name} is declared twice (again in ${file})`);
          locals[name] = value;
        }
      }
    }
    for (const name of Object.keys(variables)) if (!variableBlocks[name]) throw new TerraformError(`variable ${name} is given but not declared`);
    return new TerraformConfig(resources, data, variableBlocks, locals, variables, sources);
  }

  variableNames(): string[] {
    return Object.keys(this.variableBlocks);
  }

  variableBlock(name: string): RawBlock {
    const block = this.variableBlocks[name];
    if (!block) throw new TerraformError(`variable ${name} is not declared`);
    return block;
  }

  variable(name: string): Value {
    if (name in this.overrides) return this.overrides[name]!;
    const block = this.variableBlock(name);
    if (!('default' in block)) throw new TerraformError(`variable ${name} has no default and no value was given`);
    return block.default as Value;
  }

  resourceTypes(): string[] {
    return Object.keys(this.resourcesByType);
  }

  /** Every instance of every resource of `type`, for_each and count expanded. */
  async instances(type: string): Promise<ResourceInstance[]> {
    const cached = this.instanceCache.get(type);
    if (cached) return cached;
    const result: ResourceInstance[] = [];
    for (const [name, block] of Object.entries(this.resourcesByType[type] ?? {})) result.push(...(await this.expand(type, name, block)));
    this.instanceCache.set(type, result);
    return result;
  }

  private async expand(type: string, name: string, block: RawBlock): Promise<ResourceInstance[]> {
    const base = `${type}.${name}`;
    if ('for_each' in block) {
      const collection = await this.evaluate(block.for_each!, {}, `${base}.for_each`);
      const entries: Array<[string, Value]> = Array.isArray(collection)
        ? collection.map((item) => {
            if (typeof item !== 'string') throw new TerraformError(`${base}.for_each: a set must hold strings`);
            return [item, item];
          })
        : isPlainObject(collection)
          ? Object.entries(collection)
          : (() => {
              throw new TerraformError(`${base}.for_each is neither a map nor a set`);
            })();
      return entries.map(([key, value]) => ({ type, name, key, address: `${base}[${JSON.stringify(key)}]`, block, each: { key, value } }));
    }
    if ('count' in block) {
      const count = await this.evaluate(block.count!, {}, `${base}.count`);
      if (typeof count !== 'number') throw new TerraformError(`${base}.count is not a number`);
      return Array.from({ length: count }, (_, index) => ({ type, name, key: index, address: `${base}[${index}]`, block }));
    }
    return [{ type, name, address: base, block }];
  }

  /** The value of an argument of a resource instance, by path (`push_config.0.oidc_token.0.service_account_email`); undefined when not set. */
  async attribute(instance: ResourceInstance, attributePath: string): Promise<Value | undefined> {
    let raw: RawJson | undefined = instance.block;
    for (const part of attributePath.split('.')) {
      if (raw === undefined || raw === null) return undefined;
      if (Array.isArray(raw)) raw = raw[Number(part)];
      else if (typeof raw === 'object') raw = raw[part];
      else throw new TerraformError(`${instance.address}.${attributePath}: ${part} is inside a value, not a block`);
    }
    if (raw === undefined) return undefined;
    return this.evaluate(raw, this.scopeOf(instance), `${instance.address}.${attributePath}`);
  }

  /** The value of a local, evaluated in full. */
  async local(name: string): Promise<Value> {
    if (!(name in this.locals)) throw new TerraformError(`local.${name} is not declared`);
    return this.evaluate(this.locals[name]!, {}, `local.${name}`);
  }

  /** The unevaluated text of an argument or local, as hcl2json gives it. */
  raw(instance: ResourceInstance, attributePath: string): RawJson | undefined {
    let raw: RawJson | undefined = instance.block;
    for (const part of attributePath.split('.')) {
      if (raw === undefined || raw === null || typeof raw !== 'object') return undefined;
      raw = Array.isArray(raw) ? raw[Number(part)] : raw[part];
    }
    return raw;
  }

  rawLocal(name: string): RawJson | undefined {
    return this.locals[name];
  }

  private scopeOf(instance: ResourceInstance): Scope {
    return {
      ...(instance.each ? { each: instance.each } : {}),
      ...(typeof instance.key === 'number' ? { count: instance.key } : {}),
    };
  }

  /** Evaluates a value as hcl2json gives it: strings holding `${…}` are expressions, the rest literal. */
  async evaluate(raw: RawJson, scope: Scope, where: string): Promise<Value> {
    if (typeof raw === 'string') {
      if (!raw.includes('${') && !raw.includes('%{')) return raw;
      // A heredoc takes the template as written: quotes inside it need no escaping.
      const ast = await getExpressionAst('expression.tf', `<<EOT\n${raw}\nEOT\n`).catch((error: unknown) => {
        throw new TerraformError(`${where}: cannot parse ${JSON.stringify(raw)}: ${(error as Error).message}`);
      });
      if (!ast) throw new TerraformError(`${where}: cannot parse ${JSON.stringify(raw)}`);
      const value = await this.evaluateTemplate(ast, scope, where, true);
      if ((value as unknown) instanceof ResourceGroup || isInstance(value)) throw new TerraformError(`${where}: a whole resource is not a value the drift check reads`);
      return value;
    }
    if (Array.isArray(raw)) return Promise.all(raw.map((item, index) => this.evaluate(item, scope, `${where}[${index}]`)));
    if (raw !== null && typeof raw === 'object') {
      const result: Record<string, Value> = {};
      for (const [key, value] of Object.entries(raw)) result[key] = await this.evaluate(value, scope, `${where}.${key}`);
      return result;
    }
    return raw;
  }

  private async evaluateTemplate(node: ExpressionNode, scope: Scope, where: string, heredoc: boolean): Promise<Value> {
    const children = [...(node.children ?? [])];
    if (heredoc) {
      // The heredoc's closing line break is not part of the value.
      const last = children[children.length - 1];
      const lastValue = last && last.type === 'literalValue' ? (last.meta as { value: string }).value : undefined;
      if (lastValue === undefined || !lastValue.endsWith('\n')) throw new TerraformError(`${where}: unexpected template shape`);
      if (lastValue === '\n') children.pop();
      else children[children.length - 1] = { ...last!, meta: { ...(last!.meta as object), value: lastValue.slice(0, -1) } } as ExpressionNode;
    }
    // "${x}" alone is x itself, not its string form.
    if (children.length === 1 && children[0]!.type !== 'literalValue') return this.evaluateNode(children[0]!, scope, where);
    const parts: Array<string | Ref> = [];
    for (const child of children) {
      const value = await this.evaluateNode(child, scope, where);
      if (value instanceof Ref) parts.push(value);
      else if (value instanceof Template) parts.push(...value.parts);
      else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') parts.push(String(value));
      else throw new TerraformError(`${where}: cannot interpolate ${JSON.stringify(value)} into a string`);
    }
    return joinParts(parts);
  }

  private async parseExpression(text: string, where: string): Promise<ExpressionNode> {
    const ast = await getExpressionAst('expression.tf', text).catch((error: unknown) => {
      throw new TerraformError(`${where}: cannot parse ${text}: ${(error as Error).message}`);
    });
    if (!ast) throw new TerraformError(`${where}: cannot parse ${text}`);
    return ast;
  }

  private async evaluateNode(node: ExpressionNode, scope: Scope, where: string): Promise<Value> {
    const meta = (node.meta ?? {}) as Record<string, unknown>;
    switch (node.type) {
      case 'template':
        return this.evaluateTemplate(node, scope, where, false);
      case 'templateWrap':
        return this.evaluateNode(node.children[0]!, scope, where);
      case 'literalValue': {
        const value = meta.value as string;
        if (meta.type === 'string') return value;
        if (meta.type === 'number') return Number(value);
        if (meta.type === 'bool') return value === 'true';
        if (value === 'null') return null;
        throw new TerraformError(`${where}: literal ${value} of type ${String(meta.type)} is not supported`);
      }
      case 'tuple':
        return Promise.all(node.children.map((child) => this.evaluateNode(child, scope, where)));
      case 'object': {
        const result: Record<string, Value> = {};
        for (const [key, expression] of Object.entries(meta.items as Record<string, string>)) {
          const name = key.startsWith('"') ? (JSON.parse(key) as string) : key;
          result[name] = await this.evaluateNode(await this.parseExpression(expression, where), scope, `${where}.${name}`);
        }
        return result;
      }
      case 'scopeTraversal':
        return this.traverse(traversalParts(meta.traversal), scope, where);
      case 'relativeTraversal': {
        const source = await this.evaluateNode(node.children[0]!, scope, where);
        return this.walk(source, traversalParts(meta.traversal), where);
      }
      case 'index': {
        const [collection, key] = await Promise.all(node.children.map((child) => this.evaluateNode(child, scope, where)));
        if (typeof key !== 'string' && typeof key !== 'number') throw new TerraformError(`${where}: index ${String(meta.keyExpression)} is not a string or number`);
        return this.walk(collection!, [key], where);
      }
      case 'for':
        return this.evaluateFor(meta, scope, where);
      case 'binaryOp': {
        const [left, right] = await Promise.all(node.children.map((child) => this.evaluateNode(child, scope, where)));
        switch (meta.operator) {
          case 'logicalAnd':
            return requireBool(left, where) && requireBool(right, where);
          case 'logicalOr':
            return requireBool(left, where) || requireBool(right, where);
          case 'equal':
            return known(left, where) === known(right, where);
          case 'notEqual':
            return known(left, where) !== known(right, where);
          default:
            throw new TerraformError(`${where}: the drift check does not evaluate the ${String(meta.operator)} operator`);
        }
      }
      case 'conditional': {
        const condition = requireBool(await this.evaluateNode(node.children[0]!, scope, where), where);
        return this.evaluateNode(node.children[condition ? 1 : 2]!, scope, where);
      }
      case 'function':
        return this.call(meta.name as string, await Promise.all(node.children.map((child) => this.evaluateNode(child, scope, where))), where);
      default:
        throw new TerraformError(`${where}: the drift check does not evaluate ${node.type} expressions (${String(meta.value)})`);
    }
  }

  private async evaluateFor(meta: Record<string, unknown>, scope: Scope, where: string): Promise<Value> {
    if (meta.groupedValue) throw new TerraformError(`${where}: grouped for expressions are not evaluated`);
    const collection = await this.evaluateNode(await this.parseExpression(meta.collectionExpression as string, where), scope, where);
    if ((collection as unknown) instanceof ResourceGroup) {
      const group = collection as unknown as ResourceGroup;
      const instances = (await this.instances(group.type)).filter((instance) => instance.name === group.name);
      return this.forEntries(meta, scope, where, instances.map((instance) => [instance.key ?? 0, instance as unknown as Value]));
    }
    const entries: Array<[string | number, Value]> = Array.isArray(collection)
      ? collection.map((item, index) => [index, item])
      : isPlainObject(collection)
        ? Object.entries(collection)
        : (() => {
            throw new TerraformError(`${where}: for over ${String(collection)}`);
          })();
    return this.forEntries(meta, scope, where, entries);
  }

  private async forEntries(meta: Record<string, unknown>, scope: Scope, where: string, entries: Array<[string | number, Value]>): Promise<Value> {
    const keyVar = meta.keyVar as string;
    const valVar = meta.valVar as string;
    const toObject = meta.openRangeValue === '{';
    const list: Value[] = [];
    const object: Record<string, Value> = {};
    for (const [key, value] of entries) {
      const inner: Scope = { ...scope, symbols: { ...scope.symbols, ...(keyVar ? { [keyVar]: key } : {}), [valVar]: value } };
      if (meta.conditionalExpression) {
        const keep = await this.evaluateNode(await this.parseExpression(meta.conditionalExpression as string, where), inner, where);
        if (!requireBool(keep, where)) continue;
      }
      const result = await this.evaluateNode(await this.parseExpression(meta.valueExpression as string, where), inner, where);
      if (toObject) {
        const name = await this.evaluateNode(await this.parseExpression(meta.keyExpression as string, where), inner, where);
        if (typeof name !== 'string') throw new TerraformError(`${where}: for expression key ${String(name)} is not a string`);
        object[name] = result;
      } else list.push(result);
    }
    return toObject ? object : list;
  }

  private async traverse(parts: Array<string | number>, scope: Scope, where: string): Promise<Value> {
    const [root, ...rest] = parts;
    if (typeof root === 'string' && scope.symbols && root in scope.symbols) return this.walk(scope.symbols[root]!, rest, where);
    if (root === 'var') {
      const [name, ...more] = rest;
      return this.walk(this.variable(String(name)), more, where);
    }
    if (root === 'local') {
      const [name, ...more] = rest;
      if (!(String(name) in this.locals)) throw new TerraformError(`${where}: local.${String(name)} is not declared`);
      return this.walkRaw(this.locals[String(name)]!, more, {}, `local.${String(name)}`);
    }
    if (root === 'each') {
      if (!scope.each) throw new TerraformError(`${where}: each is used outside a for_each resource`);
      const [field, ...more] = rest;
      if (field === 'key') return this.walk(scope.each.key, more, where);
      if (field === 'value') return this.walk(scope.each.value, more, where);
      throw new TerraformError(`${where}: each.${String(field)} does not exist`);
    }
    if (root === 'count') {
      if (scope.count === undefined || rest[0] !== 'index') throw new TerraformError(`${where}: count.index is used outside a counted resource`);
      return scope.count;
    }
    if (root === 'data') {
      const [type, name, ...more] = rest;
      if (!this.dataByType[String(type)]?.[String(name)]) throw new TerraformError(`${where}: data.${String(type)}.${String(name)} is not declared`);
      return this.walk(new ResourceGroup(`data.${String(type)}`, String(name)) as unknown as Value, more, where);
    }
    if (typeof root === 'string' && this.resourcesByType[root]) {
      const [name, ...more] = rest;
      if (!this.resourcesByType[root]![String(name)]) throw new TerraformError(`${where}: ${root}.${String(name)} is not declared`);
      return this.walk(new ResourceGroup(root, String(name)) as unknown as Value, more, where);
    }
    throw new TerraformError(`${where}: cannot resolve ${parts.join('.')}`);
  }

  /** Walks a local's raw value part by part, evaluating only what the path reaches. */
  private async walkRaw(raw: RawJson, parts: Array<string | number>, scope: Scope, where: string): Promise<Value> {
    if (parts.length === 0 || typeof raw === 'string') return this.walk(await this.evaluate(raw, scope, where), parts, where);
    const [part, ...rest] = parts;
    const next = Array.isArray(raw) ? raw[Number(part)] : raw !== null && typeof raw === 'object' ? raw[String(part)] : undefined;
    if (next === undefined) throw new TerraformError(`${where}: has no ${String(part)}`);
    return this.walkRaw(next, rest, scope, `${where}.${String(part)}`);
  }

  private async walk(value: Value, parts: Array<string | number>, where: string): Promise<Value> {
    let current: Value | ResourceGroup | ResourceInstance = value;
    for (let index = 0; index < parts.length; index++) {
      const part = parts[index]!;
      if (current instanceof ResourceGroup) {
        current = await this.resourceStep(current, part, where);
        if (!(current instanceof ResourceGroup) && !isInstance(current)) return current;
        continue;
      }
      if (isInstance(current)) {
        const instance: ResourceInstance = current;
        const remaining = parts.slice(index);
        const configured = instance.block[String(part)];
        // Arguments set in the configuration are known; blocks and computed attributes are not.
        if (configured !== undefined && !isBlockList(configured)) {
          const evaluated = await this.evaluate(configured, this.scopeOf(instance), `${instance.address}.${String(part)}`);
          return this.walk(evaluated, remaining.slice(1), where);
        }
        return new Ref(instance.address, formatPath(remaining));
      }
      if (current instanceof Ref) return new Ref(current.address, `${current.attribute}${formatPath(parts.slice(index), true)}`);
      if (Array.isArray(current) && typeof part === 'number') current = current[part] as Value;
      else if (isPlainObject(current) && String(part) in current) current = (current as Record<string, Value>)[String(part)]!;
      else throw new TerraformError(`${where}: ${JSON.stringify(current)} has no ${String(part)}`);
      if (current === undefined) throw new TerraformError(`${where}: index ${String(part)} is out of range`);
    }
    // A whole resource is passed on to an index, attribute or for expression; evaluate() refuses it as a result.
    return current as Value;
  }

  private async resourceStep(group: ResourceGroup, part: string | number, where: string): Promise<Value | ResourceGroup | ResourceInstance> {
    const instances = group.type.startsWith('data.') ? this.dataInstance(group) : (await this.instances(group.type)).filter((instance) => instance.name === group.name);
    const single = instances.length === 1 && instances[0]!.key === undefined ? instances[0]! : undefined;
    if (single) return this.walk(single as unknown as Value, [part], where);
    const match = instances.find((instance) => instance.key === part);
    if (!match) throw new TerraformError(`${where}: ${group.type}.${group.name} has no instance ${JSON.stringify(part)}`);
    return match;
  }

  private dataInstance(group: ResourceGroup): ResourceInstance[] {
    const type = group.type.slice('data.'.length);
    return [{ type: group.type, name: group.name, address: `data.${type}.${group.name}`, block: this.dataByType[type]![group.name]! }];
  }

  private call(name: string, args: Value[], where: string): Value {
    const strings = (fn: string) =>
      args.map((arg) => {
        if (typeof arg !== 'string') throw new TerraformError(`${where}: ${fn}() of ${String(arg)} is only known after apply`);
        return arg;
      });
    switch (name) {
      case 'coalesce': {
        const found = args.find((arg) => arg !== null && arg !== '');
        if (found === undefined) throw new TerraformError(`${where}: coalesce() found no non-empty argument`);
        return found;
      }
      case 'toset': {
        const [list] = args;
        if (!Array.isArray(list) || !list.every((item) => typeof item === 'string')) throw new TerraformError(`${where}: toset() of something other than a list of strings`);
        return [...new Set(list as string[])];
      }
      case 'replace': {
        const [text, search, replacement] = strings('replace');
        if (search!.startsWith('/') && search!.endsWith('/')) throw new TerraformError(`${where}: replace() with a regular expression is not evaluated`);
        return text!.split(search!).join(replacement!);
      }
      case 'jsonencode':
        return terraformJson(args[0]!, where);
      case 'base64encode':
        return Buffer.from(strings('base64encode')[0]!, 'utf8').toString('base64');
      default:
        throw new TerraformError(`${where}: the drift check does not evaluate ${name}()`);
    }
  }
}

function requireBool(value: Value | undefined, where: string): boolean {
  if (typeof value !== 'boolean') throw new TerraformError(`${where}: ${String(value)} is not a known bool`);
  return value;
}

function known(value: Value | undefined, where: string): Value | undefined {
  if (value instanceof Ref || value instanceof Template) throw new TerraformError(`${where}: ${String(value)} is only known after apply`);
  if (typeof value === 'object' && value !== null) throw new TerraformError(`${where}: comparing collections is not evaluated`);
  return value;
}

function isInstance(value: unknown): value is ResourceInstance {
  return isPlainObject(value) && 'address' in value && 'block' in value && 'type' in value;
}

/** hcl2json writes nested blocks as lists of objects. */
function isBlockList(raw: RawJson): boolean {
  return Array.isArray(raw) && raw.length > 0 && raw.every((item) => item !== null && typeof item === 'object' && !Array.isArray(item));
}

function traversalParts(traversal: unknown): Array<string | number> {
  return (traversal as Array<{ type: string; segment: string }>).map(({ type, segment }) => (type === 'indexTraversal' ? (JSON.parse(segment) as string | number) : segment));
}

function formatPath(parts: Array<string | number>, continuing = false): string {
  return parts.map((part, index) => (typeof part === 'number' ? `[${part}]` : index === 0 && !continuing ? part : `.${part}`)).join('');
}

function joinParts(parts: Array<string | Ref>): string | Template {
  const merged: Array<string | Ref> = [];
  for (const part of parts) {
    const last = merged[merged.length - 1];
    if (typeof part === 'string' && typeof last === 'string') merged[merged.length - 1] = last + part;
    else merged.push(part);
  }
  if (merged.every((part) => typeof part === 'string')) return merged.join('');
  return new Template(merged);
}

/** Terraform's jsonencode: object keys in lexical order. */
function terraformJson(value: Value, where: string): string {
  const normalize = (item: Value): unknown => {
    if (item instanceof Ref || item instanceof Template) throw new TerraformError(`${where}: jsonencode() of a value known only after apply`);
    if (Array.isArray(item)) return item.map(normalize);
    if (isPlainObject(item)) return Object.fromEntries(Object.keys(item).sort().map((key) => [key, normalize((item as Record<string, Value>)[key]!)]));
    return item;
  };
  return JSON.stringify(normalize(value));
}

/** Seconds of a Terraform duration string such as "0.5s" or "604800s". */
export function durationSeconds(value: Value | undefined, where: string): number {
  if (typeof value !== 'string' || !/^\d+(\.\d+)?s$/.test(value)) throw new TerraformError(`${where}: ${JSON.stringify(value)} is not a duration in seconds`);
  return Number(value.slice(0, -1));
}
