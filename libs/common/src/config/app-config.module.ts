import { DynamicModule, Global, Inject, Module } from '@nestjs/common';
import { ConfigModule, ConfigService, registerAs } from '@nestjs/config';
import { APP_CONFIG, AppConfig } from './app-config';
import { loadConfig } from './load-config';

const CONFIG_NAMESPACE = 'chatbox';

/**
 * Registers the validated `AppConfig` (through @nestjs/config) under the `APP_CONFIG` token.
 * Tests pass a ready config; the service reads the process environment once.
 */
@Global()
@Module({})
export class AppConfigModule {
  static forRoot(config?: AppConfig): DynamicModule {
    return {
      module: AppConfigModule,
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: true,
          load: [registerAs(CONFIG_NAMESPACE, () => config ?? loadConfig(process.env))],
        }),
      ],
      providers: [
        {
          provide: APP_CONFIG,
          inject: [ConfigService],
          useFactory: (configService: ConfigService) => configService.getOrThrow<AppConfig>(CONFIG_NAMESPACE),
        },
      ],
      exports: [APP_CONFIG],
    };
  }
}

/** Parameter decorator: `constructor(@InjectConfig() config: AppConfig)`. */
export const InjectConfig = (): ParameterDecorator => Inject(APP_CONFIG);
