export * from './lifecycle.module';
export * from './shutdown-state';
