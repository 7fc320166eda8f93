import { Logger, type INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { AppConfig } from '@chatbox/common';
import { HandshakeRequest, HandshakeService, isRefusal } from './handshake.service';

type VerifyCallback = (
  result: boolean,
  code?: number,
  message?: string,
  headers?: Record<string, string>,
) => void;

/**
 * The platform adapter plus what it lacks: checks before the upgrade (`verifyClient`) with plain-text
 * refusals, and the frame size limit (`maxPayload`: oversize frames close the socket with 1009).
 */
export class ChatWsAdapter extends WsAdapter {
  private readonly serverLogger = new Logger(ChatWsAdapter.name);

  constructor(
    private readonly app: INestApplicationContext,
    private readonly config: AppConfig,
  ) {
    super(app);
    // Frames are parsed by the gateway itself; the adapter's own dispatch gets nothing to route.
    this.setMessageParser(() => undefined);
  }

  override create(port: number, options: Record<string, unknown> = {}): ReturnType<WsAdapter['create']> {
    return super.create(port, {
      ...options,
      // The gateway decorator names the path below the prefix; the prefix is configuration.
      path: `${this.config.pathPrefix}${String(options.path ?? '')}`,
      maxPayload: this.config.limits.maxMessageSize,
      // ws would keep a close listener (a closure) per socket for its `clients` set; the gateway
      // keeps its sockets itself and terminates those left at shutdown (GatewayShutdown).
      clientTracking: false,
      verifyClient: (info: { req: HandshakeRequest }, done: VerifyCallback) => this.verify(info.req, done),
    });
  }

  /**
   * The platform logs every socket error at error level; most are client faults (oversize frame,
   * bad masking). The gateway logs those per connection as warnings; server errors stay errors.
   */
  override bindErrorHandler<T extends { on: (event: string, listener: (error: Error) => void) => unknown }>(
    server: T,
  ): T {
    server.on('error', (error: Error) => this.serverLogger.error(error));
    return server;
  }

  /**
   * The platform builds an rxjs pipeline per socket to dispatch `@SubscribeMessage` handlers; the
   * gateway has none (it reads frames itself), so no socket pays for one.
   */
  override bindMessageHandlers(): void {
    // Frames are read by ChatGateway's own listener.
  }

  private verify(request: HandshakeRequest, done: VerifyCallback): void {
    // Asynchronous: in multi-instance mode the per-user connection count is checked in Redis.
    void this.app
      .get(HandshakeService)
      .verify(request)
      .then(
        (result) => this.settle(request, result, done),
        () => done(false, 503, 'Service unavailable', { 'Content-Type': 'text/plain; charset=utf-8' }),
      );
  }

  private settle(
    request: HandshakeRequest,
    result: Awaited<ReturnType<HandshakeService['verify']>>,
    done: VerifyCallback,
  ): void {
    if (isRefusal(result)) {
      done(false, result.status, result.message, { 'Content-Type': 'text/plain; charset=utf-8' });
      return;
    }
    if (request.socket.destroyed) {
      // The client left while the slot was being reserved.
      result.reservation.release();
      return;
    }
    request.chatbox = result;
    // If the upgrade never completes (client gone), the slot goes back; release is idempotent. One
    // listener shared by every socket, the reservation on the socket: no closure per connection.
    (request.socket as ReservingSocket)[RESERVATION] = result.reservation;
    request.socket.on('close', releaseReservation);
    done(true);
  }

  /**
   * The platform passes every socket's `close` to the gateway through a closure and a `once` wrapper
   * per socket; the gateway listens to `close` itself with one shared listener (issue 12: idle
   * sockets).
   */
  override bindClientDisconnect(): void {
    // ChatGateway's own `close` listener ends the socket.
  }
}

const RESERVATION = Symbol('chatbox.reservation');
type ReservingSocket = HandshakeRequest['socket'] & { [RESERVATION]?: { release(): void } };

function releaseReservation(this: ReservingSocket): void {
  this[RESERVATION]?.release();
}
