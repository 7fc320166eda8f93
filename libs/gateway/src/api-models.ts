import { ApiProperty } from '@nestjs/swagger';
import { MessageViewDto, SessionRowDto } from '@chatbox/session';

/** OpenAPI shapes of the user REST API (SPEC 5). */
export class SessionListDto {
  @ApiProperty({ type: [SessionRowDto], description: 'Newest activity first' }) sessions!: SessionRowDto[];
  @ApiProperty() user_id!: string;
  @ApiProperty({ type: 'integer' }) count!: number;
  @ApiProperty({ type: 'integer', example: 100 }) limit!: number;
  @ApiProperty({ description: 'True when the user has more sessions than `limit`' }) truncated!: boolean;
}

export class RenameSessionDto {
  @ApiProperty({ minLength: 1, maxLength: 50, description: 'One line, trimmed' }) name!: string;
}

export class SessionEndedDto {
  @ApiProperty({ enum: ['ended'] }) status!: 'ended';
}

export class ShareDto {
  @ApiProperty({ description: 'The same token on repeat' }) share_token!: string;
  @ApiProperty({ example: 'https://chat.example.com/chatbox/chat?share_token=…' }) share_url!: string;
}

export class SharedSessionDto {
  @ApiProperty() session_id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ type: [MessageViewDto], description: 'User identity removed (no user or admin ids)' })
  messages!: MessageViewDto[];
}

export class ModelDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
}

export class ModelsDto {
  @ApiProperty({ type: [ModelDto], description: 'In configuration order' }) models!: ModelDto[];
  @ApiProperty({ description: 'LLM_DEFAULT_MODEL, else the first provider' }) default!: string;
}
