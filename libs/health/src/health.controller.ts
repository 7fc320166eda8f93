import { Controller, Get, HttpCode, HttpStatus, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '@chatbox/common';
import { LivenessDto, ReadinessDto } from './api-models';
import { HealthService, LivenessBody, ReadinessBody } from './health.service';

@ApiTags('health')
@Controller()
@Public()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('healthz')
  @ApiOperation({ summary: 'Liveness (public): the process answers' })
  @ApiOkResponse({ type: LivenessDto })
  @HttpCode(HttpStatus.OK)
  liveness(): LivenessBody {
    return this.health.liveness();
  }

  @Get('readyz')
  @ApiOperation({
    summary:
      'Readiness (public): MongoDB and LLM providers; Redis when configured is shown but only degrades (the instance still serves); 503 while draining',
  })
  @ApiOkResponse({ type: ReadinessDto, description: 'Ready' })
  @ApiServiceUnavailableResponse({
    type: ReadinessDto,
    description: 'Not ready (same body, `status:"not ready"`)',
  })
  async readiness(@Res({ passthrough: true }) response: Response): Promise<ReadinessBody> {
    const body = await this.health.readiness();
    response.status(body.status === 'ready' ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return body;
  }
}
