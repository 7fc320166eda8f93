import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Logger, Params, PinoLogger } from 'nestjs-pino';
import pino, { DestinationStream, LoggerOptions } from 'pino';
import { AppConfig, redactUrl } from '@chatbox/common';

const CORRELATION_HEADER = 'x-request-id';
const SAFE_CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Nest's start-up chatter (a line per module and per route) is debug detail: at the default level
 * the start-up ends with the banner instead of ~60 lines of it. Warnings and errors stay as they are.
 */
const FRAMEWORK_CHATTER_CONTEXTS = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'WebSocketsController',
  'NestApplication',
]);

/** A client-supplied id is kept when it is harmless; otherwise a new one is made. */
export function correlationIdOf(request: IncomingMessage): string {
  const supplied = request.headers[CORRELATION_HEADER];
  return typeof supplied === 'string' && SAFE_CORRELATION_ID.test(supplied) ? supplied : randomUUID();
}

/**
 * Where log lines go: JSON to stdout in production and tests; in development the same lines made
 * readable, synchronously and on the same stdout as the start-up banner, so nothing a worker thread
 * flushes late can land after the banner. pino-pretty is a development dependency: when it is
 * missing (a production image run with NODE_ENV=development), the lines stay JSON.
 */
export function logDestination(config: AppConfig): DestinationStream {
  if (config.isProduction || config.env === 'test') return pino.destination({ dest: 1, sync: true });
  let prettify: (line: string) => string;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { prettyFactory } = require('pino-pretty') as typeof import('pino-pretty');
    prettify = prettyFactory({
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,context',
      messageFormat: '{if context}[{context}] {end}{msg}',
      colorize: Boolean(process.stdout.isTTY),
    });
  } catch {
    return pino.destination({ dest: 1, sync: true });
  }
  return { write: (line: string) => void process.stdout.write(prettify(line)) };
}

function pinoOptions(config: AppConfig): LoggerOptions {
  return {
    level: config.logLevel,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.apiKey', '*.password'],
      censor: '[redacted]',
    },
  };
}

/** pino through nestjs-pino: one logger and one format for Nest, the app and main.ts; a correlation id. */
export function loggerOptions(config: AppConfig, destination = logDestination(config)): Params {
  return {
    pinoHttp: [
      {
        ...pinoOptions(config),
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
        autoLogging: { ignore: (request) => /\/(healthz|readyz)$/.test(request.url ?? '') },
      },
      destination,
    ],
  };
}

/** The Nest logger of the app: nestjs-pino's, with the framework's start-up chatter at debug. */
export class ChatboxLogger extends Logger {
  constructor(params: Params) {
    super(new PinoLogger(params), params);
  }

  override log(message: unknown, ...optionalParams: unknown[]): void {
    const context = optionalParams[optionalParams.length - 1];
    if (typeof context === 'string' && FRAMEWORK_CHATTER_CONTEXTS.has(context))
      this.debug(message, ...optionalParams);
    else super.log(message, ...optionalParams);
  }
}

/** A logger for code outside Nest (main.ts, the embedded database), same root, same format. */
export function contextLogger(params: Params, context: string): PinoLogger {
  const logger = new PinoLogger(params);
  logger.setContext(context);
  return logger;
}
