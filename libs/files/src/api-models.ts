import { ApiProperty } from '@nestjs/swagger';
import type { UploadResponse } from './files.controller';

/** OpenAPI shape of `POST /upload` (SPEC 5). */
export class UploadResponseDto implements UploadResponse {
  @ApiProperty() file_id!: string;
  @ApiProperty({ description: 'Signed link, valid for FILE_URL_TTL' }) file_url!: string;
  @ApiProperty() filename!: string;
  @ApiProperty({ type: 'integer', description: 'Bytes' }) size!: number;
  @ApiProperty({ description: 'Detected from the content, not from the client' }) mime_type!: string;
}
