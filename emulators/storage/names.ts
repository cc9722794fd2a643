import { isBucketName } from '../../shared/bucket-name';
import { invalid } from './errors';

export function validateBucketName(name: string): void {
  if (!isBucketName(name)) throw invalid(`Invalid bucket name: '${name}'`);
}

/** Object names: 1-1024 bytes of UTF-8, no CR/LF, not "." or "..". */
export function validateObjectName(name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > 1024 || /[\r\n]/.test(name) || name === '.' || name === '..' || name.includes('\uFFFD')) {
    throw invalid('The specified object name is not valid.');
  }
}
