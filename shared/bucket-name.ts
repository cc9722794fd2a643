/**
 * Cloud Storage's bucket naming rules, the one definition for settings, the client store and the
 * local emulator: 3-63 characters (up to 222 in dot-separated parts of at most 63), lowercase
 * letters, digits, "-", "_" and ".", starting and ending with a letter or digit; not an IP
 * address and not starting with "goog".
 */
export function isBucketName(name: unknown): name is string {
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(name) || name.includes('..'))
    return false;
  if (!name.includes('.') && name.length > 63) return false;
  if (name.split('.').some((part) => part.length > 63)) return false;
  return !/^\d+\.\d+\.\d+\.\d+$/.test(name) && !name.startsWith('goog');
}
