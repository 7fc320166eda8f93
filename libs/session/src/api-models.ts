import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { STRING_MAP_SCHEMA } from '@chatbox/common';
import { HELP_STATES, type HelpState } from '@chatbox/storage';
import type { MessageView, SessionDetail, SessionRow } from './session-views';

/** OpenAPI shapes of session-views.ts (the interfaces stay the source of truth: `implements`). */
export class SessionRowDto implements SessionRow {
  @ApiProperty() id!: string;
  @ApiProperty({ description: 'Same value as `id`' }) session_id!: string;
  @ApiProperty() user_id!: string;
  @ApiProperty({ description: 'From the first user message, at most 50 characters' }) name!: string;
  @ApiProperty() model_id!: string;
  @ApiProperty({ format: 'date-time' }) last_activity!: string;
  @ApiProperty({ type: 'integer' }) message_count!: number;
  @ApiProperty() admin_assisted!: boolean;
  @ApiPropertyOptional({ description: 'Only while an admin assists' }) assisting_admin_name?: string;
  @ApiProperty() help_requested!: boolean;
  @ApiProperty({ format: 'date-time' }) start_time!: string;
  @ApiPropertyOptional({ format: 'date-time' }) end_time?: string;
  @ApiProperty() is_active!: boolean;
  @ApiProperty({ type: 'integer', description: 'Seconds; still running for active sessions' })
  duration!: number;
  @ApiProperty({ type: 'integer' }) total_tokens!: number;
  @ApiProperty({ description: 'Milliseconds' }) max_response_time!: number;
  @ApiProperty({ description: 'Milliseconds' }) avg_response_time!: number;
  @ApiPropertyOptional({ description: 'Owner only (GET /sessions)' }) share_token?: string;
  @ApiPropertyOptional({
    enum: HELP_STATES,
    description: 'Human help: open (waiting), assisted (an admin is on it), resolved; absent when none',
  })
  help_state?: HelpState;
}

export class MessageViewDto implements MessageView {
  @ApiProperty() id!: string;
  @ApiProperty({ enum: ['user_message', 'ai_response', 'file_upload', 'voice_message'] }) type!: string;
  @ApiProperty() content!: string;
  @ApiProperty({ format: 'date-time' }) timestamp!: string;
  @ApiProperty({ enum: ['user', 'ai', 'admin', 'system'] }) sender!: string;
  @ApiPropertyOptional() file_id?: string;
  @ApiPropertyOptional({ description: 'Freshly signed on every read' }) file_url?: string;
  @ApiPropertyOptional(STRING_MAP_SCHEMA) metadata?: Record<string, string>;
}

export class SessionDetailDto implements SessionDetail {
  @ApiProperty() session_id!: string;
  @ApiProperty() name!: string;
  @ApiProperty() model_id!: string;
  @ApiProperty({ type: [MessageViewDto] }) messages!: MessageViewDto[];
  @ApiProperty() is_active!: boolean;
  @ApiProperty() admin_assisted!: boolean;
  @ApiPropertyOptional({ description: 'Only while an admin assists' }) assisting_admin_name?: string;
}
