export * from './http-metrics.middleware';
export * from './metric-names';
export * from './metrics.controller';
export * from './metrics.module';
export * from './metrics.service';
export * from './storage-metrics';
