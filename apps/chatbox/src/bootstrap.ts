import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { AppConfig, HttpExceptionFilter } from '@chatbox/common';
import { ChatWsAdapter } from '@chatbox/gateway';
import { AppModule } from './app.module';
import { setupOpenApi } from './openapi';

/** Builds the Nest application for a resolved configuration (used by main.ts and the tests). */
export async function createChatboxApp(config: AppConfig): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    bufferLogs: true,
    abortOnError: false,
  });
  app.useLogger(app.get(Logger));
  app.set('trust proxy', config.trustedProxies);
  app.disable('x-powered-by');
  app.setGlobalPrefix(config.pathPrefix, { exclude: ['api/upload'] });
  app.useGlobalFilters(new HttpExceptionFilter());
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
