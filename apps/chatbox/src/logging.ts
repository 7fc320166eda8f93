import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Params } from 'nestjs-pino';
import { AppConfig, redactUrl } from '@chatbox/common';

const CORRELATION_HEADER = 'x-request-id';
const SAFE_CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A client-supplied id is kept when it is harmless; otherwise a new one is made. */
export function correlationIdOf(request: IncomingMessage): string {
  const supplied = request.headers[CORRELATION_HEADER];
  return typeof supplied === 'string' && SAFE_CORRELATION_ID.test(supplied) ? supplied : randomUUID();
}

/** pino through nestjs-pino: JSON in production, pretty in development, no secrets, a correlation id. */
export function loggerOptions(config: AppConfig): Params {
  return {
    pinoHttp: {
      level: config.logLevel,
      genReqId: (request, response) => {
        const id = correlationIdOf(request);
        response.setHeader(CORRELATION_HEADER, id);
        return id;
      },
      customProps: (request) => ({ correlationId: request.id }),
      serializers: {
        req: (request: { id: string; method: string; url: string }) => ({
          id: request.id,
          method: request.method,
          url: redactUrl(request.url),
        }),
      },
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.apiKey', '*.password'],
        censor: '[redacted]',
      },
      autoLogging: { ignore: (request) => /\/(healthz|readyz)$/.test(request.url ?? '') },
      ...(config.isProduction || config.env === 'test'
        ? {}
        : {
            transport: {
              target: 'pino-pretty',
              options: { singleLine: true, translateTime: 'SYS:HH:MM:ss.l' },
            },
          }),
    },
  };
}
