import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { ShutdownState } from '@chatbox/common';
import { SessionShutdown } from '@chatbox/session';
import { ChatGateway } from './chat.gateway';

/**
 * SPEC 13, in order: no new sockets (ShutdownState, set by main on SIGTERM), every socket told and
 * closed with 1001, replies in flight given a grace period and then stored as interrupted, then the
 * queued writes flushed. Runs before the HTTP server and the database connection close.
 */
@Injectable()
export class GatewayShutdown implements BeforeApplicationShutdown {
  private readonly logger = new Logger(GatewayShutdown.name);

  constructor(
    private readonly gateway: ChatGateway,
    private readonly session: SessionShutdown,
    private readonly shutdown: ShutdownState,
  ) {}

  async beforeApplicationShutdown(): Promise<void> {
    this.shutdown.beginDraining();
    const sockets = this.gateway.connectionCount;
    // Told at once, before anything waits on replies or the database.
    this.gateway.closeAll();
    const { replies, unwritten } = await this.session.drain();
    this.gateway.terminateAll();
    this.logger.log({ sockets, replies, unwritten }, 'connections closed, replies settled, writes flushed');
  }
}
