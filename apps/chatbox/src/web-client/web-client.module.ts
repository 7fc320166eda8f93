import { Module } from '@nestjs/common';
import { WebClientController } from './web-client.controller';

/** The browser client (SPEC 9): sessions, chat and admin pages served under the prefix. */
@Module({ controllers: [WebClientController] })
export class WebClientModule {}
