export * from './format';
export * from './notification.constants';
export * from './notification.module';
export * from './notification.service';
export * from './notification.types';
export * from './rate-limiter';
export * from './redis-rate-limiter';
export * from './templates';
