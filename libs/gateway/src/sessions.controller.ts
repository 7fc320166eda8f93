import {
  Body,
  Controller,
  Delete,
  Get,
  Header,
  HttpCode,
  HttpStatus,
  Param,
  Patch,
  Post,
  Req,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBody,
  ApiExcludeEndpoint,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { Request } from 'express';
import {
  ApiErrors,
  ApiUser,
  AppConfig,
  ClientIdPipe,
  CurrentPrincipal,
  InjectConfig,
  Principal,
  Public,
} from '@chatbox/common';
import {
  SessionDetail,
  SessionDetailDto,
  SessionRow,
  SessionService,
  SharedSessionView,
  toSessionRow,
} from '@chatbox/session';
import {
  ModelsDto,
  RenameSessionDto,
  SessionEndedDto,
  SessionListDto,
  SharedSessionDto,
  ShareDto,
} from './api-models';
import { parseRenameBody } from './dto/rename-session';
import { PublicRateLimitGuard } from './public-rate-limit.guard';

export interface SessionListBody {
  sessions: SessionRow[];
  user_id: string;
  count: number;
  limit: number;
  truncated: boolean;
}

/** User REST API for sessions, sharing and models (SPEC 5). Thin: parse, authorise, call, map. */
@ApiTags('sessions')
@Controller()
export class SessionsController {
  constructor(
    private readonly sessions: SessionService,
    @InjectConfig() private readonly config: AppConfig,
  ) {}

  @Get('sessions')
  @ApiUser()
  @ApiOperation({ summary: "The caller's sessions (at most 100, newest activity first)" })
  @ApiOkResponse({ type: SessionListDto })
  async list(@CurrentPrincipal() principal: Principal): Promise<SessionListBody> {
    const { sessions, total, limit } = await this.sessions.listForUser(principal.userId);
    return {
      sessions: sessions.map((session) => toSessionRow(session, { includeShareToken: true })),
      user_id: principal.userId,
      count: sessions.length,
      limit,
      truncated: total > sessions.length,
    };
  }

  @Get('sessions/:id')
  @ApiUser()
  @ApiOperation({ summary: 'A session with its messages (owner, or admin)' })
  @ApiParam({ name: 'id', description: 'Session id' })
  @ApiOkResponse({ type: SessionDetailDto })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND)
  async detail(
    @CurrentPrincipal() principal: Principal,
    @Param('id', ClientIdPipe) id: string,
  ): Promise<SessionDetail> {
    return this.sessions.detailView(principal, id);
  }

  @Patch('sessions/:id')
  @ApiUser()
  @ApiOperation({ summary: '[ext] Rename a session (owner); the name is stored like the automatic one' })
  @ApiParam({ name: 'id', description: 'Session id' })
  @ApiBody({ type: RenameSessionDto })
  @ApiNoContentResponse({ description: 'Renamed' })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND, HttpStatus.PAYLOAD_TOO_LARGE)
  @HttpCode(HttpStatus.NO_CONTENT)
  async rename(
    @CurrentPrincipal() principal: Principal,
    @Param('id', ClientIdPipe) id: string,
    @Body() body: unknown,
  ): Promise<void> {
    await this.sessions.rename(principal, id, parseRenameBody(body, this.config.protocol.sessionNameChars));
  }

  @Delete('sessions/:id')
  @ApiUser()
  @ApiOperation({
    summary:
      "[ext] Delete a session from the caller's list (owner): ended, share link revoked, kept for admins",
  })
  @ApiParam({ name: 'id', description: 'Session id' })
  @ApiNoContentResponse({ description: 'Deleted (also when it already was)' })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND)
  @HttpCode(HttpStatus.NO_CONTENT)
  async remove(
    @CurrentPrincipal() principal: Principal,
    @Param('id', ClientIdPipe) id: string,
  ): Promise<void> {
    await this.sessions.deleteForOwner(principal, id);
  }

  @Post('sessions/:id/end')
  @ApiUser()
  @ApiOperation({ summary: 'End a session (owner); idempotent, the first end time is kept' })
  @ApiParam({ name: 'id', description: 'Session id' })
  @ApiOkResponse({ type: SessionEndedDto })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND)
  @HttpCode(HttpStatus.OK)
  async end(
    @CurrentPrincipal() principal: Principal,
    @Param('id', ClientIdPipe) id: string,
  ): Promise<{ status: 'ended' }> {
    await this.sessions.endOwned(principal, id);
    return { status: 'ended' };
  }

  @Post('sessions/:id/share')
  @ApiUser()
  @ApiOperation({ summary: 'Create (or return the existing) read-only share link (owner)' })
  @ApiParam({ name: 'id', description: 'Session id' })
  @ApiOkResponse({ type: ShareDto })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND)
  @HttpCode(HttpStatus.OK)
  async share(
    @CurrentPrincipal() principal: Principal,
    @Param('id', ClientIdPipe) id: string,
    @Req() request: Request,
  ): Promise<{ share_token: string; share_url: string }> {
    const { shareToken } = await this.sessions.share(principal, id);
    const origin = `${request.protocol}://${request.get('host') ?? 'localhost'}`;
    return {
      share_token: shareToken,
      share_url: `${origin}${this.config.pathPrefix}/chat?share_token=${shareToken}`,
    };
  }

  @Delete('sessions/:id/share')
  @ApiUser()
  @ApiOperation({ summary: 'Revoke the share link (owner)' })
  @ApiParam({ name: 'id', description: 'Session id' })
  @ApiNoContentResponse({ description: 'Link revoked' })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND)
  @HttpCode(HttpStatus.NO_CONTENT)
  async unshare(
    @CurrentPrincipal() principal: Principal,
    @Param('id', ClientIdPipe) id: string,
  ): Promise<void> {
    await this.sessions.unshare(principal, id);
  }

  @Get('shared/:token')
  @ApiOperation({ summary: 'A shared session, without user identity (public, rate limited per IP)' })
  @ApiParam({ name: 'token', description: 'Share token' })
  @ApiOkResponse({ type: SharedSessionDto })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND, HttpStatus.TOO_MANY_REQUESTS)
  @Public()
  @UseGuards(PublicRateLimitGuard)
  async shared(@Param('token', ClientIdPipe) token: string): Promise<SharedSessionView> {
    return this.sessions.sharedView(token);
  }

  @Get('models')
  @ApiUser()
  @ApiOperation({ summary: 'The configured models and the default one' })
  @ApiOkResponse({ type: ModelsDto })
  models(): { models: { id: string; name: string }[]; default: string } {
    return this.sessions.modelCatalog();
  }

  /** A plain GET on the socket path is not a WebSocket request (SPEC 4.1). */
  @Get('ws')
  @ApiExcludeEndpoint() // The WebSocket protocol is documented in docs/asyncapi.yaml.
  @Public()
  @HttpCode(HttpStatus.BAD_REQUEST)
  @Header('Content-Type', 'text/plain; charset=utf-8')
  notWebSocket(): string {
    return 'Expected a WebSocket upgrade request';
  }
}
