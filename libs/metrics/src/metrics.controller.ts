import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
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
  ErrorBodyDto,
} from '@chatbox/common';
import { MetricsService } from './metrics.service';

/**
 * `GET {prefix}/metrics/prometheus`. Public (no JWT: Prometheus has none) but limited to
 * METRICS_ALLOWED_NETWORKS. `request.ip` already honours X-Forwarded-For from TRUSTED_PROXIES only
 * (express `trust proxy`), so a client cannot claim an allowed address through the header.
 */
@ApiTags('metrics')
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
  @ApiOperation({ summary: 'Prometheus metrics (no token; METRICS_ALLOWED_NETWORKS only)' })
  @ApiProduces('text/plain; version=0.0.4; charset=utf-8', 'application/json')
  @ApiOkResponse({ description: 'Prometheus text exposition format', schema: { type: 'string' } })
  @ApiForbiddenResponse({
    type: ErrorBodyDto,
    description: '`FORBIDDEN`: caller outside the allowed networks',
  })
  async prometheus(@Req() request: Request, @Res({ passthrough: true }) response: Response): Promise<string> {
    const client = request.ip ?? request.socket.remoteAddress ?? '';
    if (!addressInList(this.allowed, client))
      throw new DomainError(ErrorCode.FORBIDDEN, 'Metrics are not available from this address');
    response.setHeader('Content-Type', this.metrics.contentType);
    response.setHeader('Cache-Control', 'no-store');
    return this.metrics.render();
  }
}
