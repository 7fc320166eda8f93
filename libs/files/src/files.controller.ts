import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  applyDecorators,
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  Logger,
  Param,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiConsumes,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import {
  AuthenticatedRequest,
  CurrentPrincipal,
  Principal,
  Public,
  ApiErrors,
  ApiUser,
  BEARER_AUTH,
  ClientIdPipe,
} from '@chatbox/common';
import { UploadResponseDto } from './api-models';
import { ByteRange, parseByteRange } from './byte-range';
import { contentDisposition } from './filename';
import { FilesService } from './files.service';
import { FileUrlSigner } from './file-url-signer';
import { UploadService } from './upload.service';
import type { UploadRecord } from './uploads.repository';

export interface UploadResponse {
  file_id: string;
  file_url: string;
  filename: string;
  size: number;
  mime_type: string;
}

const INLINE_TYPES = /^(image|audio|video)\//;
/** Signed links are capabilities: browsers and proxies must not keep them around. */
const CACHE_CONTROL = 'private, no-store';

/** Parameters, header and answers of `GET files/:id` beyond the summary. */
function FileDownloadDocs(): MethodDecorator {
  return applyDecorators(
    ApiParam({ name: 'id', description: 'File id' }),
    ApiQuery({ name: 'expires', required: false, description: 'Signed URL expiry (from `file_url`)' }),
    ApiQuery({ name: 'signature', required: false, description: 'Signed URL signature (from `file_url`)' }),
    ApiQuery({
      name: 'share_token',
      required: false,
      description: 'A share token of a session holding the file',
    }),
    ApiHeader({ name: 'Range', required: false, description: 'A single byte range, e.g. `bytes=0-1023`' }),
    ApiProduces('application/octet-stream'),
    ApiOkResponse({
      description: 'The bytes with their Content-Type and Content-Disposition',
      schema: { type: 'string', format: 'binary' },
    }),
    ApiResponse({ status: HttpStatus.PARTIAL_CONTENT, description: 'The requested range (`Content-Range`)' }),
    ApiResponse({
      status: HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
      description: 'Range outside the file',
    }),
    ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.UNAUTHORIZED, HttpStatus.FORBIDDEN, HttpStatus.NOT_FOUND),
  );
}

/** Type and disposition of a stored file; browsers must not sniff, cache or run it. */
function setFileHeaders(response: Response, upload: UploadRecord): void {
  const mime = upload.mime.startsWith('text/') ? `${upload.mime}; charset=utf-8` : upload.mime;
  response.setHeader('Content-Type', mime);
  response.setHeader(
    'Content-Disposition',
    contentDisposition(INLINE_TYPES.test(upload.mime) ? 'inline' : 'attachment', upload.filename),
  );
  response.setHeader('X-Content-Type-Options', 'nosniff');
  response.setHeader('Accept-Ranges', 'bytes');
  response.setHeader('Cache-Control', CACHE_CONTROL);
  response.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
}

/** 206 with Content-Range for a range, else 200; Content-Length of what is sent. */
function setLengthHeaders(response: Response, size: number, range: ByteRange | undefined): void {
  if (range) {
    response.status(HttpStatus.PARTIAL_CONTENT);
    response.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    response.setHeader('Content-Length', String(range.end - range.start + 1));
  } else {
    response.status(HttpStatus.OK);
    response.setHeader('Content-Length', String(size));
  }
}

/**
 * `POST {prefix}/upload` (alias `POST /api/upload`, outside the prefix) and `GET {prefix}/files/:id`.
 * Files are streamed through the service for both drivers (also S3, via GetObject with Range):
 * access checks, Content-Type, Content-Disposition, nosniff and ranges stay in one place.
 */
@ApiTags('files')
@Controller()
export class FilesController {
  private readonly logger = new Logger(FilesController.name);

  constructor(
    private readonly uploadService: UploadService,
    private readonly files: FilesService,
    private readonly signer: FileUrlSigner,
  ) {}

  @Post(['upload', 'api/upload'])
  @ApiUser()
  @ApiOperation({
    summary: 'Upload a file (multipart field `file`); also at `/api/upload` outside the prefix',
  })
  @ApiConsumes('multipart/form-data')
  @ApiBody({
    schema: {
      type: 'object',
      required: ['file'],
      properties: { file: { type: 'string', format: 'binary', description: 'At most UPLOAD_MAX_SIZE' } },
    },
  })
  @ApiOkResponse({ type: UploadResponseDto })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.PAYLOAD_TOO_LARGE, HttpStatus.TOO_MANY_REQUESTS)
  @HttpCode(HttpStatus.OK)
  async upload(@Req() request: Request, @CurrentPrincipal() principal: Principal): Promise<UploadResponse> {
    const record = await this.uploadService.receive(request, principal);
    return {
      file_id: record.id,
      file_url: this.signer.sign(record.id),
      filename: record.filename,
      size: record.size,
      mime_type: record.mime,
    };
  }

  @Get('files/:id')
  @ApiBearerAuth(BEARER_AUTH)
  @ApiOperation({
    summary:
      'Download a file: signed URL (`expires`+`signature`), or Bearer (owner, admin), or `share_token`',
  })
  @FileDownloadDocs()
  @Public()
  async download(
    @Param('id', ClientIdPipe) id: string,
    @Query() query: Record<string, unknown>,
    @Req() request: AuthenticatedRequest,
    @Res() response: Response,
  ): Promise<void> {
    const upload = await this.files.authorize(id, {
      signature: { expires: query.expires, signature: query.signature },
      principal: request.principal,
      shareToken: query.share_token,
    });
    setFileHeaders(response, upload);
    const range = parseByteRange(request.headers.range, upload.size);
    if (range === 'unsatisfiable') {
      response.setHeader('Content-Range', `bytes */${upload.size}`);
      response.status(HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE).end();
      return;
    }
    const body = await this.files.open(upload, range);
    setLengthHeaders(response, upload.size, range);
    await this.send(body, request, response, upload.id);
  }

  /** Streams the body (for HEAD only the headers); a client that went away mid-download is normal. */
  private async send(body: Readable, request: Request, response: Response, fileId: string): Promise<void> {
    if (request.method === 'HEAD') {
      body.destroy();
      response.end();
      return;
    }
    try {
      await pipeline(body, response);
    } catch (error) {
      // Headers are gone already: anything but a client that went away is logged.
      if (!response.writableEnded && !request.destroyed)
        this.logger.warn({ fileId, err: (error as Error).message }, 'download failed');
      response.destroy();
    }
  }
}
