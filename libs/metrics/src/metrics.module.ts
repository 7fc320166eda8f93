import { Global, MiddlewareConsumer, Module, NestModule, RequestMethod } from '@nestjs/common';
import { HttpMetricsMiddleware } from './http-metrics.middleware';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';
import { StorageMetrics } from './storage-metrics';

/**
 * Prometheus metrics (SPEC 12). Global so the app's observer wiring (ObservabilityModule) can
 * inject `MetricsService`; feature modules never do: they emit `ChatboxEvents` or offer observers.
 * Needs the (global) StorageModule for the MongoDB timing and the active-session count.
 */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [MetricsService, StorageMetrics, HttpMetricsMiddleware],
  exports: [MetricsService],
})
export class MetricsModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}
