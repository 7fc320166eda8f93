import { Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { UNMATCHED_ENDPOINT } from './metric-names';
import { MetricsService } from './metrics.service';

const MS_PER_SECOND = 1000;
/** Route of the not-found handler the Express adapter mounts under the global prefix. */
const NOT_FOUND_ROUTE = '*path';

/**
 * The route pattern that served the request (`/chatbox/sessions/:id`). Raw URLs would put ids and
 * tokens into label values: unbounded cardinality and a leak.
 */
export function endpointOf(request: Request): string {
  const route = (request as Request & { route?: { path?: unknown } }).route;
  if (typeof route?.path !== 'string' || route.path === NOT_FOUND_ROUTE) return UNMATCHED_ENDPOINT;
  return `${request.baseUrl ?? ''}${route.path}`;
}

/**
 * Times every HTTP request. A middleware rather than an interceptor so that requests refused by
 * guards (401/403) and failures before the handler are measured too.
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: MetricsService) {}

  use(request: Request, response: Response, next: NextFunction): void {
    const started = performance.now();
    // `close` fires for completed and for aborted responses alike.
    response.once('close', () => {
      this.metrics.observeHttp(
        endpointOf(request),
        request.method,
        (performance.now() - started) / MS_PER_SECOND,
      );
    });
    next();
  }
}
