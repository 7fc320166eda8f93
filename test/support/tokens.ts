import { createHmac } from 'node:crypto';
import jwt from 'jsonwebtoken';

export const TEST_JWT_SECRET = 'k3y-for-integration-runs-only-0123456789abcdef';

export interface TestClaims {
  user_id?: string;
  roles?: unknown;
  name?: string;
  [claim: string]: unknown;
}

/** A valid HS256 token for the test secret. */
export function userToken(
  userId: string,
  options: { name?: string; expiresInSeconds?: number } = {},
): string {
  return jwt.sign(
    { user_id: userId, roles: [], ...(options.name ? { name: options.name } : {}) },
    TEST_JWT_SECRET,
    {
      algorithm: 'HS256',
      ...(options.expiresInSeconds !== undefined ? { expiresIn: options.expiresInSeconds } : {}),
    },
  );
}

export function adminToken(userId: string, name = `Admin ${userId}`, role = 'admin'): string {
  return jwt.sign({ user_id: userId, roles: [role], name }, TEST_JWT_SECRET, { algorithm: 'HS256' });
}

/** Arbitrary claims, signed with any secret and algorithm (for hostile-token tests). */
export function signClaims(
  claims: TestClaims,
  secret = TEST_JWT_SECRET,
  algorithm: jwt.Algorithm = 'HS256',
): string {
  return jwt.sign(claims, secret, { algorithm });
}

export function expiredToken(userId: string): string {
  const past = Math.floor(Date.now() / 1000) - 3600;
  return jwt.sign({ user_id: userId, roles: [], exp: past }, TEST_JWT_SECRET, { algorithm: 'HS256' });
}

/** `alg: none`, which must be refused. */
export function unsignedToken(userId: string): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ user_id: userId, roles: ['admin'] })}.`;
}

/** Structurally valid HS256 with a forged signature from another secret. */
export function foreignToken(userId: string): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ user_id: userId, roles: ['admin'] })}`;
  return `${body}.${createHmac('sha256', 'another-secret-entirely-0123456789').update(body).digest('base64url')}`;
}
