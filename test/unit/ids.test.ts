import fc from 'fast-check';
import path from 'node:path';
import {
  changePath,
  idToKey,
  keyToId,
  MAX_ID_BYTES,
  parsePath,
  pathMatches,
  validateContactId,
  validateGroupId,
  validateNetworkId,
  validateSnapshotId,
  validateWriterId,
} from '../../shared/ids';
import { InvalidIdError } from 'super-spine';

function refusal(action: () => unknown): InvalidIdError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidIdError);
    return error as InvalidIdError;
  }
  throw new Error('expected an InvalidIdError');
}

const validators = {
  network: validateNetworkId,
  group: validateGroupId,
  contact: validateContactId,
  snapshot: validateSnapshotId,
  writer: validateWriterId,
} as const;

describe('id validation', () => {
  const valid = [
    'a',
    'net-1',
    'Ünïcødé',
    '日本語',
    '🐢',
    'a b',
    'with%percent',
    'a.b',
    '...',
    '.hidden',
    '~tilde',
    '\'quote"',
    '__proto__',
    'constructor',
  ];

  it.each(Object.entries(validators))('accepts ordinary %s ids and returns them', (_kind, validate) => {
    for (const id of valid) expect(validate(id)).toBe(id);
  });

  it('accepts group paths like users/@alice', () => {
    for (const id of ['users/@alice', 'a/b/c/d', 'x/.y', 'a/.../b', '日本/語']) expect(validateGroupId(id)).toBe(id);
  });

  it('accepts exactly 1024 bytes and refuses 1025, counting bytes not characters', () => {
    expect(MAX_ID_BYTES).toBe(1024);
    expect(validateNetworkId('a'.repeat(1024))).toHaveLength(1024);
    expect(validateGroupId('é'.repeat(512))).toHaveLength(512); // 1024 bytes
    expect(validateContactId('🐢'.repeat(256))).toHaveLength(512); // 4 bytes each: 1024
    const ascii = refusal(() => validateNetworkId('a'.repeat(1025)));
    expect(ascii.reason).toContain('1025 bytes');
    // 513 characters, 1026 bytes: far under 1024 characters but over the byte limit.
    const wide = refusal(() => validateGroupId('é'.repeat(513)));
    expect(wide.reason).toContain('1026 bytes');
    expect(refusal(() => validateContactId('🐢'.repeat(256) + 'a')).reason).toContain('1025 bytes');
  });

  const refused: [string, unknown][] = [
    ['empty', ''],
    ['a dot segment', '.'],
    ['a dot-dot segment', '..'],
    ['NUL', 'a\u0000b'],
    ['unit separator', 'a\u001f'],
    ['DEL', '\u007fa'],
    ['next line (C1)', 'a\u0085b'],
    ['newline', 'line\nbreak'],
    ['a lone high surrogate', 'a\ud800'],
    ['a lone low surrogate', '\udc00a'],
    ['reversed surrogates', '\udc00\ud800'],
  ];

  it.each(refused)('refuses %s for every kind, naming the id', (_what, id) => {
    for (const [kind, validate] of Object.entries(validators)) {
      const error = refusal(() => validate(id));
      expect(error.kind).toBe(kind);
      expect(error.id).toBe(id);
      expect(error.code).toBe('INVALID_ID');
      expect(error.message).toContain(JSON.stringify(id));
    }
  });

  const badPaths = ['a//b', '/a', 'a/', '/', 'a/./b', 'a/../b', '../a', 'a/..', './a', 'a/b/.'];

  it.each(badPaths)('refuses the group path %j with a reason', (id) => {
    const error = refusal(() => validateGroupId(id));
    expect(error.id).toBe(id);
    expect(error.message).toContain(JSON.stringify(id));
    expect(error.reason).toMatch(/segment|"\/"/);
  });

  it.each([null, undefined, 42, {}, ['a'], new String('a')])('refuses the non-string %p', (id) => {
    for (const validate of Object.values(validators)) {
      const error = refusal(() => validate(id));
      expect(error.reason).toContain('string');
      expect(error.message).toMatch(/\((null|undefined|number|object)\)/);
    }
  });

  it('refuses "/" in network, contact, snapshot and writer ids', () => {
    for (const validate of [validateNetworkId, validateContactId, validateSnapshotId, validateWriterId]) {
      const error = refusal(() => validate('users/@alice'));
      expect(error.reason).toContain('"/"');
    }
  });

  it('shortens a very long id in the error message', () => {
    const id = 'x'.repeat(5000);
    const error = refusal(() => validateNetworkId(id));
    expect(error.id).toBe(id);
    expect(error.message.length).toBeLessThan(300);
    expect(error.message).toContain('5000 chars');
  });

  it('property: a string with a control character is never a valid id', () => {
    const control = fc
      .oneof(fc.integer({ min: 0, max: 0x1f }), fc.integer({ min: 0x7f, max: 0x9f }))
      .map((c) => String.fromCharCode(c));
    fc.assert(
      fc.property(fc.string({ maxLength: 5 }), control, fc.string({ maxLength: 5 }), (before, bad, after) => {
        refusal(() => validateGroupId(before + bad + after));
      }),
    );
  });
});

/** Valid group ids, including hostile ones: `%`, `.`, `~`, unicode, astral characters, long runs. */
const segment = fc
  .string({
    unit: fc.oneof(
      fc.constantFrom('%', '.', '~', '-', '_', '@', 'A', 'a', '2', '%2F', '%25', 'é', '🐢', ' ', '\\', ':'),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    ),
    minLength: 1,
    maxLength: 12,
  })
  .filter((s) => s !== '.' && s !== '..' && !s.includes('/'));
const validGroupId = fc
  .oneof(
    fc.array(segment, { minLength: 1, maxLength: 4 }).map((segments) => segments.join('/')),
    fc.tuple(segment, fc.integer({ min: 50, max: 400 })).map(([s, n]) => s.repeat(n).slice(0, 1000)),
  )
  .filter((id) => {
    try {
      validateGroupId(id);
      return true;
    } catch {
      return false;
    }
  });

describe('idToKey', () => {
  it('keeps safe characters and escapes the rest', () => {
    expect(idToKey('abc-XYZ_09@')).toBe('abc-XYZ_09@');
    expect(idToKey('users/@alice')).toBe('users%2F@alice');
    expect(idToKey('a.b')).toBe('a%2Eb');
    expect(idToKey('100%')).toBe('100%25');
    expect(idToKey('é')).toBe('%C3%A9');
    expect(idToKey('..')).toBe('%2E%2E');
  });

  it('shortens long keys to a readable head and a hash, within maxLength', () => {
    const id = 'a'.repeat(300);
    const key = idToKey(id);
    expect(key.length).toBeLessThanOrEqual(200);
    expect(key.startsWith('aaaa')).toBe(true);
    expect(key).toMatch(/~[0-9a-f]{64}$/);
    expect(keyToId(key)).toBeUndefined();
    expect(idToKey('a'.repeat(299) + 'b')).not.toBe(key);
  });

  it('does not cut an escape in half when it shortens', () => {
    for (let pad = 0; pad < 6; pad++) {
      const key = idToKey('a'.repeat(pad) + 'é'.repeat(200));
      const head = key.slice(0, key.indexOf('~'));
      expect(head).toMatch(/^a*(%[0-9A-F]{2})*$/);
    }
  });

  it('property: injective, one safe segment, within maxLength, invertible when not shortened', () => {
    fc.assert(
      fc.property(validGroupId, validGroupId, fc.integer({ min: 66, max: 255 }), (a, b, maxLength) => {
        const keyA = idToKey(a, maxLength);
        const keyB = idToKey(b, maxLength);
        expect(keyA === keyB).toBe(a === b);
        for (const key of [keyA, keyB]) {
          expect(key).not.toContain('/');
          expect(key).not.toContain('\\');
          expect(key).not.toContain('.');
          expect(key).not.toBe('');
          expect(key.length).toBeLessThanOrEqual(maxLength);
          expect(key).toMatch(/^[A-Za-z0-9_@%~-]+$/);
        }
        if (!keyA.includes('~')) expect(keyToId(keyA)).toBe(a);
        else expect(keyToId(keyA)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('property: ids that differ only in a shortened tail still get different keys', () => {
    const tail = fc.string({ unit: fc.constantFrom('a', 'b', '.', '%', 'é'), minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(tail, tail, (tailA, tailB) => {
        fc.pre(tailA !== tailB);
        const head = 'h'.repeat(300);
        expect(idToKey(head + tailA)).not.toBe(idToKey(head + tailB));
      }),
    );
  });

  it('gives different keys to ids that a careless escaping would confuse', () => {
    const lookalikes = ['%', '%25', '.', '%2E', 'a/b', 'a%2Fb', '~', '%7E', 'é', '%C3%A9', 'A', 'a', '@', '%40'];
    expect(new Set(lookalikes.map((id) => idToKey(id))).size).toBe(lookalikes.length);
    for (const id of lookalikes) expect(keyToId(idToKey(id))).toBe(id);
  });

  it('property: many distinct ids give as many distinct keys', () => {
    fc.assert(
      fc.property(fc.uniqueArray(validGroupId, { minLength: 2, maxLength: 30 }), (ids) => {
        expect(new Set(ids.map((id) => idToKey(id))).size).toBe(ids.length);
        expect(new Set(ids.map((id) => idToKey(id, 80))).size).toBe(ids.length);
      }),
      { numRuns: 200 },
    );
  });

  it('property: path.join(root, key) stays directly inside root', () => {
    const root = path.resolve('/srv/spine/networks');
    fc.assert(
      fc.property(validGroupId, (id) => {
        const joined = path.join(root, idToKey(id));
        expect(path.dirname(joined)).toBe(root);
        expect(path.relative(root, joined)).toBe(idToKey(id));
        expect(path.relative(root, joined).startsWith('..')).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps hostile ids inside root', () => {
    const root = path.resolve('/srv/spine');
    for (const id of ['..', '.', '../etc', '..%2F..', '%2E%2E', 'a/../../b', '\\..\\..', 'C:', '~']) {
      const joined = path.join(root, idToKey(id));
      expect(path.dirname(joined)).toBe(root);
    }
  });
});

describe('change paths', () => {
  it('parses a network path and a network/group path', () => {
    expect(parsePath('netA')).toEqual({ networkId: 'netA' });
    expect(parsePath('netA/users')).toEqual({ networkId: 'netA', groupPrefix: 'users' });
    expect(parsePath('netA/users/@alice')).toEqual({ networkId: 'netA', groupPrefix: 'users/@alice' });
    expect(changePath('netA', 'users/@alice')).toBe('netA/users/@alice');
  });

  it.each(['', 'netA/', '/users', 'netA//users', 'netA/users/', 'netA/../x', '..', 'net\u0000/x'])(
    'refuses the path %j',
    (bad) => {
      const error = refusal(() => parsePath(bad));
      expect(error.kind).toBe('path');
      expect(error.id).toBe(bad);
    },
  );

  it('refuses non-string paths', () => {
    expect(refusal(() => parsePath(undefined)).kind).toBe('path');
    expect(refusal(() => parsePath(7)).kind).toBe('path');
  });

  it('matches segment-wise', () => {
    const users = parsePath('netA/users');
    expect(pathMatches(users, 'netA', 'users')).toBe(true);
    expect(pathMatches(users, 'netA', 'users/@alice')).toBe(true);
    expect(pathMatches(users, 'netA', 'users/@alice/inbox')).toBe(true);
    expect(pathMatches(users, 'netA', 'usersX')).toBe(false);
    expect(pathMatches(users, 'netA', 'users@alice')).toBe(false);
    expect(pathMatches(users, 'netA', 'user')).toBe(false);
    expect(pathMatches(users, 'netA', 'other/users')).toBe(false);
    expect(pathMatches(users, 'netB', 'users')).toBe(false);
    expect(pathMatches(users, 'netAB', 'users')).toBe(false);

    const alice = parsePath('netA/users/@alice');
    expect(pathMatches(alice, 'netA', 'users')).toBe(false);
    expect(pathMatches(alice, 'netA', 'users/@alice')).toBe(true);
    expect(pathMatches(alice, 'netA', 'users/@alicex')).toBe(false);
  });

  it('matches every group of the network for a network path, and no other network', () => {
    const whole = parsePath('netA');
    for (const group of ['root', 'users', 'users/@alice']) expect(pathMatches(whole, 'netA', group)).toBe(true);
    expect(pathMatches(whole, 'netA2', 'root')).toBe(false);
    expect(pathMatches(whole, 'net', 'root')).toBe(false);
  });

  it('property: a prefix matches exactly the groups that extend it by whole segments', () => {
    const seg = fc.constantFrom('a', 'b', 'ab', '@x');
    const group = fc.array(seg, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));
    fc.assert(
      fc.property(group, group, (prefix, groupId) => {
        const expected =
          groupId.split('/').slice(0, prefix.split('/').length).join('/') === prefix &&
          groupId.split('/').length >= prefix.split('/').length;
        expect(pathMatches(parsePath(`n/${prefix}`), 'n', groupId)).toBe(expected);
      }),
    );
  });
});
