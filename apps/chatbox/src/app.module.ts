import { DynamicModule, Module } from '@nestjs/common';
import { LoggerModule, Params } from 'nestjs-pino';
import { AppConfig, AppConfigModule, AuthModule, LifecycleModule } from '@chatbox/common';
import { AdminModule } from '@chatbox/admin';
import { FilesModule } from '@chatbox/files';
import { GatewayModule } from '@chatbox/gateway';
import { HealthModule } from '@chatbox/health';
import { MetricsModule } from '@chatbox/metrics';
import { StorageModule } from '@chatbox/storage';
import { loggerOptions } from './logging';
import { ObservabilityModule } from './observability.module';
import { WebClientModule } from './web-client';

/** Root module: wires the feature modules under the validated configuration. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, logging: Params = loggerOptions(config)): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        LoggerModule.forRoot(logging),
        LifecycleModule,
        AuthModule,
        StorageModule,
        HealthModule,
        MetricsModule,
        FilesModule,
        GatewayModule,
        AdminModule,
        WebClientModule,
        ObservabilityModule,
      ],
    };
  }
}
