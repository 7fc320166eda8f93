import { Controller, Get, HttpCode, HttpStatus, Res } from '@nestjs/common';
import type { Response } from 'express';
import { Public } from '@chatbox/common';
import { HealthService, LivenessBody, ReadinessBody } from './health.service';

@Controller()
@Public()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('healthz')
  @HttpCode(HttpStatus.OK)
  liveness(): LivenessBody {
    return this.health.liveness();
  }

  @Get('readyz')
  async readiness(@Res({ passthrough: true }) response: Response): Promise<ReadinessBody> {
    const body = await this.health.readiness();
    response.status(body.status === 'ready' ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return body;
  }
}
