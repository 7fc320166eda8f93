export * from './format';
export * from './notification.constants';
export * from './notification.module';
export * from './notification.service';
export * from './notification.types';
export * from './templates';
