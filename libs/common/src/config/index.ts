export * from './app-config';
export * from './app-config.module';
export * from './load-config';
export * from './network';
export * from './parse';
