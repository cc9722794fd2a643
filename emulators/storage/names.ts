import { invalid } from './errors';

/** Cloud Storage bucket naming rules (the parts that matter locally). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

export function isValidBucketName(name: string): boolean {
  if (!BUCKET_NAME.test(name) || name.includes('..')) return false;
  if (!name.includes('.') && name.length > 63) return false;
  if (name.split('.').some((part) => part.length > 63)) return false;
  return !/^\d+\.\d+\.\d+\.\d+$/.test(name) && !name.startsWith('goog');
}

export function validateBucketName(name: string): void {
  if (!isValidBucketName(name)) throw invalid(`Invalid bucket name: '${name}'`);
}

/** Object names: 1-1024 bytes of UTF-8, no CR/LF, not "." or "..". */
export function validateObjectName(name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > 1024 || /[\r\n]/.test(name) || name === '.' || name === '..' || name.includes('\uFFFD')) {
    throw invalid('The specified object name is not valid.');
  }
}
