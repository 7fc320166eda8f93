import { Global, Module } from '@nestjs/common';
import { ChatboxEvents } from './chatbox-events';
import { ShutdownState } from './shutdown-state';

@Global()
@Module({ providers: [ShutdownState, ChatboxEvents], exports: [ShutdownState, ChatboxEvents] })
export class LifecycleModule {}
