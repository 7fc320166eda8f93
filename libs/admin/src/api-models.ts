import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { SessionDetailDto } from '@chatbox/session';
import type { AdminMetrics, AdminSessionDetail, TimeseriesBucket } from './admin.service';

/** OpenAPI shapes of the admin REST API (SPEC 5); the service interfaces stay the source of truth. */
export class TakeoverLogEntryDto {
  @ApiProperty() admin_id!: string;
  @ApiProperty() admin_name!: string;
  @ApiProperty({ format: 'date-time' }) start!: string;
  @ApiPropertyOptional({ format: 'date-time', description: 'Absent while the takeover lasts' }) end?: string;
}

export class AdminSessionDetailDto extends SessionDetailDto implements AdminSessionDetail {
  @ApiProperty() user_id!: string;
  @ApiProperty({ type: [TakeoverLogEntryDto], description: 'The takeover log' })
  takeovers!: TakeoverLogEntryDto[];
}

export class TimeRangeDto {
  @ApiProperty({ format: 'date-time' }) start!: string;
  @ApiProperty({ format: 'date-time' }) end!: string;
}

export class AdminMetricsDto implements AdminMetrics {
  @ApiProperty({ type: 'integer' }) active_sessions!: number;
  @ApiProperty({ type: 'integer' }) total_sessions!: number;
  @ApiProperty({ description: 'Computed from session intervals' }) avg_concurrent!: number;
  @ApiProperty({ type: 'integer' }) max_concurrent!: number;
  @ApiProperty({ type: 'integer' }) total_tokens!: number;
  @ApiProperty({ description: 'Milliseconds' }) avg_response_time!: number;
  @ApiProperty({ description: 'Milliseconds' }) max_response_time!: number;
  @ApiProperty({ type: 'integer' }) admin_assisted_count!: number;
  @ApiProperty({ type: 'integer' }) help_requested_count!: number;
  @ApiProperty({ type: 'integer' }) message_count!: number;
  @ApiProperty({ type: TimeRangeDto }) time_range!: TimeRangeDto;
  @ApiPropertyOptional({ description: 'True when the range held more sessions than are scanned' })
  truncated?: boolean;
}

export class TimeseriesBucketDto implements TimeseriesBucket {
  @ApiProperty({ format: 'date-time' }) start!: string;
  @ApiProperty({ format: 'date-time' }) end!: string;
  @ApiProperty({ type: 'integer' }) sessions_started!: number;
  @ApiProperty() avg_concurrent!: number;
  @ApiProperty({ type: 'integer' }) max_concurrent!: number;
  @ApiProperty({ type: 'integer' }) total_tokens!: number;
  @ApiProperty({ description: 'Milliseconds' }) avg_response_time!: number;
  @ApiProperty({ type: 'integer' }) message_count!: number;
}

export class TimeseriesDto {
  @ApiProperty({ type: 'integer', description: 'Bucket size in milliseconds' }) bucket_ms!: number;
  @ApiProperty({ type: [TimeseriesBucketDto] }) buckets!: TimeseriesBucketDto[];
}

export class TakeoverDto {
  @ApiProperty({ example: 'Takeover initiated successfully' }) message!: string;
  @ApiProperty() session_id!: string;
  @ApiProperty() admin_id!: string;
  @ApiProperty() admin_name!: string;
}

export class CannedRepliesDto {
  @ApiProperty({ type: [String], description: 'ADMIN_CANNED_REPLIES, in configuration order' })
  replies!: string[];
}
