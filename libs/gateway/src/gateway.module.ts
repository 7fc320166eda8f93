import { Module } from '@nestjs/common';
import { SessionModule } from '@chatbox/session';
import { ChatGateway } from './chat.gateway';
import { GatewayShutdown } from './gateway-shutdown';
import { HandshakeService } from './handshake.service';
import { PublicRateLimitGuard } from './public-rate-limit.guard';
import { SessionsController } from './sessions.controller';

@Module({
  imports: [SessionModule],
  controllers: [SessionsController],
  providers: [ChatGateway, HandshakeService, PublicRateLimitGuard, GatewayShutdown],
  exports: [ChatGateway],
})
export class GatewayModule {}
