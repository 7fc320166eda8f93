import { ApiProperty, ApiPropertyOptional, ApiPropertyOptions } from '@nestjs/swagger';
import type { CheckBody, LivenessBody, ReadinessBody } from './health.service';

/** OpenAPI shapes of `GET /healthz` and `GET /readyz` (SPEC 5). */
export class LivenessDto implements LivenessBody {
  @ApiProperty({ enum: ['healthy'] }) status!: 'healthy';
  @ApiProperty({ format: 'date-time' }) timestamp!: string;
}

/** One readiness check: `status` plus details such as `latency_ms`, `error` or `reason`. */
const CHECK: ApiPropertyOptions = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string', enum: ['ready', 'not ready'] } },
  additionalProperties: true,
};

/** Redis unreachable degrades the service without failing readiness. */
const REDIS_CHECK: ApiPropertyOptions = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string', enum: ['ready', 'degraded'] } },
  additionalProperties: true,
  description:
    'Only when REDIS_URL is set. `degraded` while Redis does not answer: the instance still serves its own sockets, readiness stays 200',
};

export class ReadinessChecksDto {
  @ApiProperty(CHECK) mongodb!: CheckBody;
  @ApiProperty(CHECK) llm!: CheckBody;
  @ApiPropertyOptional(REDIS_CHECK) redis?: CheckBody;
  @ApiPropertyOptional({ ...CHECK, description: 'Only while draining (SIGTERM)' }) shutdown?: CheckBody;
}

export class ReadinessDto implements ReadinessBody {
  @ApiProperty({ enum: ['ready', 'not ready'] }) status!: 'ready' | 'not ready';
  @ApiProperty({ format: 'date-time' }) timestamp!: string;
  @ApiProperty({ type: ReadinessChecksDto }) checks!: ReadinessChecksDto;
}
