import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Params } from 'nestjs-pino';
import { AppConfig, HttpExceptionFilter, StorableInputPipe } from '@chatbox/common';
import { ChatWsAdapter } from '@chatbox/gateway';
import { AppModule } from './app.module';
import { ChatboxLogger, loggerOptions } from './logging';
import { setupOpenApi } from './openapi';

/**
 * Builds the Nest application for a resolved configuration (used by main.ts and the tests). The
 * pino logger is handed over before anything is built, so even a failing start logs in one format.
 */
export async function createChatboxApp(
  config: AppConfig,
  logging: Params = loggerOptions(config),
): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, logging), {
    logger: new ChatboxLogger(logging),
    abortOnError: false,
  });
  app.set('trust proxy', config.trustedProxies);
  app.disable('x-powered-by');
  app.setGlobalPrefix(config.pathPrefix, { exclude: ['api/upload'] });
  app.useGlobalFilters(new HttpExceptionFilter());
  // Before any controller: no route parameter or query value the database cannot store (issue 13).
  app.useGlobalPipes(new StorableInputPipe());
  app.useWebSocketAdapter(new ChatWsAdapter(app, config));
  if (config.corsAllowedOrigins.length > 0) {
    app.enableCors({
      origin: config.corsAllowedOrigins.includes('*') ? true : config.corsAllowedOrigins,
      methods: ['GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
      allowedHeaders: ['Authorization', 'Content-Type'],
      exposedHeaders: ['X-Total-Count', 'Retry-After'],
    });
  }
  setupOpenApi(app, config);
  return app;
}
