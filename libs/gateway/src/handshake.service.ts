import type { IncomingMessage } from 'node:http';
import { Injectable } from '@nestjs/common';
import {
  AppConfig,
  DomainError,
  ErrorCode,
  InjectConfig,
  Principal,
  ShutdownState,
  TokenService,
  bearerToken,
  isClientId,
} from '@chatbox/common';
import { ConnectionRegistry, Reservation } from '@chatbox/session';

export interface HandshakeRefusal {
  status: 400 | 401 | 403 | 429 | 503;
  message: string;
}

export interface AcceptedHandshake {
  principal: Principal;
  reservation: Reservation;
  requestedSessionId?: string;
}

/** The request properties we attach between verification and the `connection` event. */
export interface HandshakeRequest extends IncomingMessage {
  chatbox?: AcceptedHandshake;
}

/**
 * Checks made before the upgrade (SPEC 4.1): token, origin, connection limits. A refused handshake
 * never holds a slot; an accepted one holds its slot until the socket closes or the upgrade fails.
 */
@Injectable()
export class HandshakeService {
  constructor(
    private readonly tokens: TokenService,
    private readonly registry: ConnectionRegistry,
    private readonly shutdown: ShutdownState,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  async verify(request: IncomingMessage): Promise<AcceptedHandshake | HandshakeRefusal> {
    if (this.shutdown.isDraining) return { status: 503, message: 'Server is shutting down' };
    const url = new URL(request.url ?? '/', 'http://localhost');
    const token = bearerToken(request.headers.authorization) ?? url.searchParams.get('token') ?? undefined;
    if (!token) return { status: 401, message: 'Missing token' };
    let principal: Principal;
    try {
      principal = this.tokens.verify(token);
    } catch (error) {
      const expired = error instanceof DomainError && error.code === ErrorCode.TOKEN_EXPIRED;
      return { status: 401, message: expired ? 'Token expired' : 'Invalid token' };
    }
    const origin = request.headers.origin;
    const allowed = this.config.allowedOrigins;
    if (allowed.length > 0 && (!origin || !allowed.includes(origin)))
      return { status: 403, message: 'Origin not allowed' };
    const reservation = await this.registry.reserve(principal.userId);
    if (reservation === 'instance_limit') return { status: 429, message: 'Server connection limit reached' };
    if (reservation === 'user_limit') return { status: 429, message: 'Too many connections for this user' };
    // An id that cannot be a session's (too long, outside the id alphabet, U+0000) is an unknown
    // one: it binds nothing and never reaches a lookup; the greeting announces a new id as usual.
    const sessionId = url.searchParams.get('session_id') ?? '';
    const bindable = isClientId(sessionId) && sessionId.length <= this.config.protocol.sessionIdChars;
    return { principal, reservation, requestedSessionId: bindable ? sessionId : undefined };
  }
}

export function isRefusal(result: AcceptedHandshake | HandshakeRefusal): result is HandshakeRefusal {
  return 'status' in result;
}
