export * from './chat-ws.adapter';
export * from './chat.gateway';
export * from './frame-parser';
export * from './gateway.module';
export * from './handshake.service';
