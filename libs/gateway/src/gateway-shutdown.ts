import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { AppConfig, InjectConfig, ShutdownState } from '@chatbox/common';
import { ReplyService } from '@chatbox/session';
import { ChatGateway } from './chat.gateway';

/**
 * SPEC 13, in order: no new sockets (ShutdownState, set by main on SIGTERM), every socket told and
 * closed with 1001, replies in flight given a grace period and then stored as interrupted.
 * Runs before the HTTP server and the database connection close.
 */
@Injectable()
export class GatewayShutdown implements BeforeApplicationShutdown {
  private readonly logger = new Logger(GatewayShutdown.name);

  constructor(
    private readonly gateway: ChatGateway,
    private readonly replies: ReplyService,
    private readonly shutdown: ShutdownState,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  async beforeApplicationShutdown(): Promise<void> {
    this.shutdown.beginDraining();
    const sockets = this.gateway.connectionCount;
    const replies = this.replies.inFlight;
    this.gateway.closeAll('server_shutdown');
    await this.replies.drain(this.config.protocol.shutdownReplyGraceMs);
    this.logger.log({ sockets, replies }, 'connections closed and replies settled');
  }
}
