import { CanActivate, ExecutionContext, Injectable, SetMetadata, createParamDecorator } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { DomainError, ErrorCode } from '../errors';
import { Principal } from './principal';
import { TokenService } from './token.service';

const PUBLIC_ROUTE = 'chatbox:public';
const ADMIN_ROUTE = 'chatbox:admin';

/** Marks a route that needs no token. */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);
/** Marks a route (or controller) for admins only. */
export const AdminOnly = (): MethodDecorator & ClassDecorator => SetMetadata(ADMIN_ROUTE, true);

export type AuthenticatedRequest = Request & { principal?: Principal };

export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** Global REST guard: Bearer JWT everywhere except `@Public()` routes; `@AdminOnly()` needs an admin role. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly tokens: TokenService,
    private readonly reflector: Reflector,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const token = bearerToken(request.headers.authorization);
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) {
      if (token) request.principal = this.tryVerify(token);
      return true;
    }
    if (!token) throw new DomainError(ErrorCode.UNAUTHORIZED, 'Missing bearer token');
    let principal: Principal;
    try {
      principal = this.tokens.verify(token);
    } catch (error) {
      if (error instanceof DomainError) throw new DomainError(ErrorCode.INVALID_TOKEN, error.message);
      throw error;
    }
    request.principal = principal;
    if (this.reflector.getAllAndOverride<boolean>(ADMIN_ROUTE, targets) && !principal.isAdmin)
      throw new DomainError(ErrorCode.FORBIDDEN, 'Admin role required');
    return true;
  }

  private tryVerify(token: string): Principal | undefined {
    try {
      return this.tokens.verify(token);
    } catch {
      return undefined;
    }
  }
}

/** The verified caller of a guarded route. */
export const CurrentPrincipal = createParamDecorator((_data: unknown, context: ExecutionContext) => {
  const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
  return request.principal;
});
