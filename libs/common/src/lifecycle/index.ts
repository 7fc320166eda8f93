export * from './chatbox-events';
export * from './lifecycle.module';
export * from './shutdown-state';
