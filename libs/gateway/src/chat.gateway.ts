import { Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { OnGatewayConnection, WebSocketGateway } from '@nestjs/websockets';
import type { RawData, WebSocket } from 'ws';
import {
  AppConfig,
  ChatboxEvents,
  DomainError,
  ErrorCode,
  FATAL_SOCKET_CODES,
  InjectConfig,
} from '@chatbox/common';
import { ChatService, instant } from '@chatbox/session';
import { NOTICE_REASONS } from './frame-mapper';
import { parseFrame } from './frame-parser';
import { HandshakeRequest } from './handshake.service';
import { SocketConnection } from './socket-connection';

/**
 * Frames waiting behind the one being handled, per socket: at most MAX_PENDING_BYTES of them, and at
 * most this multiple of the per-minute message limit (tiny frames cost memory beyond their bytes).
 * While either bound is reached the socket is not read (TCP backpressure on the client); nothing is
 * refused or lost.
 */
const PENDING_FRAMES_PER_RATE_LIMIT = 2;
const MIN_PENDING_FRAMES = 32;
/** A client whose unread output exceeds this many frames' worth is closed as too slow. */
const SEND_BUFFER_FRAMES = 8;
const CLOSE_GOING_AWAY = 1001;

/** How often the one sweep over all sockets runs (pings, pong timeouts, token expiry). */
const TOKEN_EXPIRY_CHECK_MS = 1_000;

/**
 * What the gateway keeps per socket, on top of `ws`' own: every field here is needed per socket
 * (ordering, backpressure, heartbeat, token expiry, the connection slot, the duration metric); no
 * timer or closure is created per socket (one sweep and shared listeners serve them all).
 */
interface SocketState {
  connection: SocketConnection;
  pending: number;
  pendingBytes: number;
  tail: Promise<void>;
  lastPong: number;
  lastPing: number;
  /** ms epoch of the token's `exp`; undefined when it has none (or once reported). */
  expiresAt?: number;
  openedAt: number;
  reservation: { release(): void };
}

/**
 * The WebSocket transport at `{prefix}/ws`: parses and validates frames itself, handles the frames of
 * one socket strictly in order, maps domain errors to `error` frames for the causing socket only.
 */
@WebSocketGateway({ path: '/ws' })
export class ChatGateway implements OnGatewayConnection, OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(ChatGateway.name);
  private readonly sockets = new Map<WebSocket, SocketState>();
  private sweepTimer?: NodeJS.Timeout;
  // Listeners shared by every socket (`this` is the socket), instead of closures per socket.
  private readonly onMessage = ((gateway: ChatGateway) =>
    function (this: WebSocket, data: RawData, isBinary: boolean) {
      const state = gateway.sockets.get(this);
      if (state) gateway.enqueue(this, state, data, isBinary);
    })(this);
  private readonly onPong = ((gateway: ChatGateway) =>
    function (this: WebSocket) {
      const state = gateway.sockets.get(this);
      if (state) state.lastPong = Date.now();
    })(this);
  // The platform's per-socket disconnect closure is switched off (ChatWsAdapter): `close` comes here.
  private readonly onClose = ((gateway: ChatGateway) =>
    function (this: WebSocket) {
      gateway.disconnected(this);
    })(this);
  private readonly onError = ((gateway: ChatGateway) =>
    function (this: WebSocket, error: Error) {
      gateway.logger.warn(
        { err: error.message, connectionId: gateway.sockets.get(this)?.connection.id },
        'socket error',
      );
    })(this);

  constructor(
    private readonly chat: ChatService,
    private readonly events: ChatboxEvents,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  async handleConnection(socket: WebSocket, request: HandshakeRequest): Promise<void> {
    const handshake = request.chatbox;
    if (!handshake) {
      socket.close(4003, 'unauthorized');
      return;
    }
    const connection = new SocketConnection(
      socket,
      handshake.principal,
      this.config.limits.maxMessageSize * SEND_BUFFER_FRAMES,
      this.events,
      request.socket,
    );
    const now = Date.now();
    const state: SocketState = {
      connection,
      pending: 0,
      pendingBytes: 0,
      tail: Promise.resolve(),
      lastPong: now,
      lastPing: now,
      expiresAt: handshake.principal.expiresAt,
      openedAt: performance.now(),
      reservation: handshake.reservation,
    };
    this.sockets.set(socket, state);
    this.events.emit({ type: 'socket.opened' });
    socket.on('message', this.onMessage);
    socket.on('pong', this.onPong);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    state.tail = this.chat.connect(connection, handshake.requestedSessionId).catch((error: unknown) => {
      this.reply(state, error, undefined);
    });
  }

  /** The socket closed (its `close` event, `onClose`); a second call finds nothing to do. */
  private disconnected(socket: WebSocket): void {
    const state = this.sockets.get(socket);
    if (!state) return;
    this.sockets.delete(socket);
    state.reservation.release();
    this.events.emit({ type: 'socket.closed', durationSeconds: (performance.now() - state.openedAt) / 1000 });
    this.chat.disconnect(state.connection);
  }

  /** Shutdown: every socket is told, then closed with 1001 (SPEC 13). */
  closeAll(): void {
    const at = instant();
    for (const [socket, state] of this.sockets) {
      state.connection.send({ kind: 'serverShutdown', sessionId: state.connection.sessionId, at });
      socket.close(CLOSE_GOING_AWAY, NOTICE_REASONS.serverShutdown);
    }
  }

  /** Shutdown, last: sockets whose closing handshake has not finished are cut. */
  terminateAll(): void {
    for (const socket of this.sockets.keys()) socket.terminate();
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  private enqueue(socket: WebSocket, state: SocketState, data: RawData, isBinary: boolean): void {
    const bytes = rawByteLength(data);
    state.pending++;
    state.pendingBytes += bytes;
    // ws may still emit frames it had already read: they are queued too (bounded by one read).
    if (this.backlogFull(state)) socket.pause();
    state.tail = state.tail.then(async () => {
      try {
        await this.handleFrame(state, data, isBinary);
      } finally {
        state.pending--;
        state.pendingBytes -= bytes;
        if (socket.isPaused && !this.backlogFull(state)) socket.resume();
      }
    });
  }

  private backlogFull(state: SocketState): boolean {
    const { maxPendingBytes, rateLimit } = this.config.limits;
    return (
      state.pendingBytes >= maxPendingBytes ||
      state.pending >= Math.max(MIN_PENDING_FRAMES, rateLimit * PENDING_FRAMES_PER_RATE_LIMIT)
    );
  }

  private async handleFrame(state: SocketState, data: RawData, isBinary: boolean): Promise<void> {
    let sessionId = state.connection.sessionId;
    this.events.emit({ type: 'message.received' });
    try {
      if (isBinary)
        throw new DomainError(ErrorCode.INVALID_FORMAT, 'binary frames are not supported; send JSON text');
      const frame = parseFrame(rawText(data));
      sessionId = frame.session_id ?? sessionId;
      await this.chat.handle(state.connection, frame);
    } catch (error) {
      this.reply(state, error, state.connection.sessionId ?? sessionId);
    }
  }

  /** The one place where failures become `error` frames (SPEC 4.9). */
  private reply(state: SocketState, error: unknown, sessionId: string | undefined): void {
    const domain =
      error instanceof DomainError
        ? error
        : new DomainError(ErrorCode.INTERNAL_ERROR, 'Something went wrong');
    if (!(error instanceof DomainError) || domain.code === ErrorCode.INTERNAL_ERROR)
      this.logger.error(
        {
          err: error,
          userId: state.connection.principal.userId,
          sessionId,
          connectionId: state.connection.id,
        },
        'frame handling failed',
      );
    state.connection.send({
      kind: 'failure',
      sessionId,
      code: domain.code,
      message: domain.message,
      recoverable: domain.recoverable,
      retryAfterMs: domain.retryAfterMs,
      at: instant(),
    });
    this.events.emit({ type: 'message.error' });
    const closeCode = FATAL_SOCKET_CODES[domain.code];
    if (closeCode) state.connection.close(closeCode, domain.code);
  }

  /** One timer for every socket: protocol pings, sockets silent past the pong timeout, expired tokens. */
  onModuleInit(): void {
    const { pingIntervalMs } = this.config.protocol;
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(pingIntervalMs, TOKEN_EXPIRY_CHECK_MS));
    this.sweepTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweepTimer);
  }

  private sweep(now = Date.now()): void {
    const { pingIntervalMs, pongTimeoutMs } = this.config.protocol;
    for (const [socket, state] of this.sockets) {
      if (state.expiresAt !== undefined && now >= state.expiresAt) {
        state.expiresAt = undefined;
        this.reply(
          state,
          new DomainError(ErrorCode.TOKEN_EXPIRED, 'Token expired; reconnect with a fresh token'),
          state.connection.sessionId,
        );
        continue;
      }
      if (now - state.lastPing < pingIntervalMs) continue;
      if (now - state.lastPong > pongTimeoutMs) {
        socket.terminate();
        continue;
      }
      state.lastPing = now;
      socket.ping();
    }
  }
}

function rawByteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((total, part) => total + part.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}
