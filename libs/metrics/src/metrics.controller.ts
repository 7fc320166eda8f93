import { Controller, Get, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { BlockList } from 'node:net';
import {
  AppConfig,
  DomainError,
  ErrorCode,
  InjectConfig,
  Public,
  addressInList,
  networkList,
} from '@chatbox/common';
import { MetricsService } from './metrics.service';

/**
 * `GET {prefix}/metrics/prometheus`. Public (no JWT: Prometheus has none) but limited to
 * METRICS_ALLOWED_NETWORKS. `request.ip` already honours X-Forwarded-For from TRUSTED_PROXIES only
 * (express `trust proxy`), so a client cannot claim an allowed address through the header.
 */
@Controller('metrics')
@Public()
export class MetricsController {
  private readonly allowed: BlockList;

  constructor(
    private readonly metrics: MetricsService,
    @InjectConfig() config: AppConfig,
  ) {
    this.allowed = networkList(config.metricsAllowedNetworks);
  }

  @Get('prometheus')
  async prometheus(@Req() request: Request, @Res({ passthrough: true }) response: Response): Promise<string> {
    const client = request.ip ?? request.socket.remoteAddress ?? '';
    if (!addressInList(this.allowed, client))
      throw new DomainError(ErrorCode.FORBIDDEN, 'Metrics are not available from this address');
    response.setHeader('Content-Type', this.metrics.contentType);
    response.setHeader('Cache-Control', 'no-store');
    return this.metrics.render();
  }
}
