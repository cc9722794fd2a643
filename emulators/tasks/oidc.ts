import { createHash } from 'node:crypto';

/**
 * An OIDC ID token shaped like the one Cloud Tasks mints for a service account, but
 * unsigned: header `{"alg":"none","typ":"JWT"}` and an empty signature segment. Handlers
 * can decode it and check `aud` and `email`; a verifier that checks Google's signature
 * (e.g. `OAuth2Client.verifyIdToken`) rejects it, so local handlers must skip that check.
 */
export interface IdTokenClaims {
  aud: string;
  azp: string;
  email: string;
  email_verified: true;
  exp: number;
  iat: number;
  iss: 'https://accounts.google.com';
  sub: string;
}

const lifetimeSeconds = 3600;

const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A stable numeric id for the service account, standing in for its unique id. */
function subjectFor(email: string): string {
  return BigInt(`0x${createHash('sha256').update(email).digest('hex').slice(0, 15)}`)
    .toString()
    .padStart(21, '1');
}

export function unsignedIdToken(audience: string, serviceAccountEmail: string, nowMs = Date.now()): string {
  const iat = Math.floor(nowMs / 1000);
  const sub = subjectFor(serviceAccountEmail);
  const claims: IdTokenClaims = {
    aud: audience,
    azp: sub,
    email: serviceAccountEmail,
    email_verified: true,
    exp: iat + lifetimeSeconds,
    iat,
    iss: 'https://accounts.google.com',
    sub,
  };
  return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
}

/** Decodes the claims of a JWT without checking any signature (for tests and local handlers). */
export function decodeIdTokenClaims(token: string): Record<string, unknown> {
  const payload = token.split('.')[1];
  if (!payload) throw new Error('not a JWT: expected header.payload.signature');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}
