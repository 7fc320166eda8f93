import { createSecretKey, type KeyObject } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import jwt, { type Algorithm } from 'jsonwebtoken';
import { AppConfig, InjectConfig } from '../config';
import { DomainError, ErrorCode } from '../errors';
import { isStorableText } from '../validation/text-rules';
import { ADMIN_ROLES, Principal } from './principal';

/** HMAC only; `none` and asymmetric algorithms are refused (SPEC 3). */
const ACCEPTED_ALGORITHMS: Algorithm[] = ['HS256', 'HS384', 'HS512'];

export interface TokenClaims {
  user_id: string;
  roles: string[];
  name?: string;
}

@Injectable()
export class TokenService {
  /** Built once: jsonwebtoken would otherwise make a key object from the string at every handshake. */
  private readonly key: KeyObject;

  constructor(@InjectConfig() config: AppConfig) {
    this.key = createSecretKey(Buffer.from(config.jwt.secret, 'utf8'));
  }

  /**
   * Verifies signature, algorithm, `exp`/`nbf` and the claim shapes.
   * @throws DomainError TOKEN_EXPIRED for an expired token, UNAUTHORIZED for anything else.
   */
  verify(token: string): Principal {
    let payload: unknown;
    try {
      payload = jwt.verify(token, this.key, { algorithms: ACCEPTED_ALGORITHMS });
    } catch (error) {
      if (error instanceof jwt.TokenExpiredError)
        throw new DomainError(ErrorCode.TOKEN_EXPIRED, 'Token expired');
      throw new DomainError(ErrorCode.UNAUTHORIZED, 'Invalid token');
    }
    return principalFromClaims(payload);
  }

  /** Mints a token for development links and tests. */
  sign(claims: TokenClaims, expiresInSeconds?: number): string {
    return jwt.sign({ ...claims }, this.key, {
      algorithm: 'HS256',
      ...(expiresInSeconds === undefined ? {} : { expiresIn: expiresInSeconds }),
    });
  }
}

function principalFromClaims(payload: unknown): Principal {
  if (typeof payload !== 'object' || payload === null)
    throw new DomainError(ErrorCode.UNAUTHORIZED, 'Invalid token');
  const claims = payload as Record<string, unknown>;
  const userId = claims.user_id;
  const roles = claims.roles;
  if (typeof userId !== 'string' || userId.trim() === '')
    throw new DomainError(ErrorCode.UNAUTHORIZED, 'Token has no user_id');
  if (!Array.isArray(roles) || !roles.every((role) => typeof role === 'string'))
    throw new DomainError(ErrorCode.UNAUTHORIZED, 'Token has no roles array');
  const name = typeof claims.name === 'string' && claims.name.trim() !== '' ? claims.name : userId;
  // Both are stored (session owner, assisting admin): text the database cannot store is no identity.
  if (!isStorableText(userId) || !isStorableText(name))
    throw new DomainError(ErrorCode.UNAUTHORIZED, 'Token has a user_id or name that cannot be stored');
  return {
    userId,
    roles,
    name,
    isAdmin: roles.some((role) => ADMIN_ROLES.includes(role)),
    expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : undefined,
  };
}
