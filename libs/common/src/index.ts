export * from './auth';
export * from './config';
export * from './errors';
export * from './ids';
export * from './lifecycle';
export * from './rate-limit';
export * from './redact-url';
export * from './openapi';
