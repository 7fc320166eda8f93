import {
  applyDecorators,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  Post,
  Query,
  Res,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import {
  AdminOnly,
  ApiErrors,
  BEARER_AUTH,
  ClientIdPipe,
  CurrentPrincipal,
  Principal,
} from '@chatbox/common';
import { SessionRow, SessionRowDto } from '@chatbox/session';
import { AdminRateLimitGuard } from './admin-rate-limit.guard';
import {
  AdminMetricsDto,
  AdminSessionDetailDto,
  CannedRepliesDto,
  TakeoverDto,
  TimeseriesDto,
} from './api-models';
import { AdminMetrics, AdminService, AdminSessionDetail, TimeseriesBucket } from './admin.service';
import {
  BUCKETS,
  parseListQuery,
  parseRangeQuery,
  Query as QueryParams,
  rejectUnknown,
  SORT_FIELDS,
  USER_SEARCH_MAX_CHARS,
} from './dto/admin-query';
import { HELP_STATES } from '@chatbox/storage';

const TOTAL_COUNT = {
  'X-Total-Count': {
    description: 'Rows matching the filter, before limit/offset',
    schema: { type: 'integer' },
  },
};
const TIME = 'RFC 3339 or YYYY-MM-DD';

/** Query parameters of the session lists (parsed by parseListQuery; unknown ones are 400). */
function ListQueryDocs(): MethodDecorator {
  return applyDecorators(
    ApiQuery({ name: 'status', required: false, enum: ['active', 'ended'] }),
    ApiQuery({ name: 'admin_assisted', required: false, type: Boolean }),
    ApiQuery({ name: 'help_requested', required: false, type: Boolean }),
    ApiQuery({ name: 'help_state', required: false, enum: HELP_STATES, description: '[ext] The help queue' }),
    ApiQuery({ name: 'start_time', required: false, description: `Started at or after; ${TIME}` }),
    ApiQuery({ name: 'end_time', required: false, description: `Started at or before; ${TIME}` }),
    ApiQuery({ name: 'start_time_from', required: false, description: `Alias of start_time; ${TIME}` }),
    ApiQuery({ name: 'start_time_to', required: false, description: `Alias of end_time; ${TIME}` }),
    ApiQuery({ name: 'sort_by', required: false, enum: SORT_FIELDS, description: 'Default start_time' }),
    ApiQuery({ name: 'sort_order', required: false, enum: ['asc', 'desc'], description: 'Default desc' }),
    ApiQuery({
      name: 'limit',
      required: false,
      schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    }),
    ApiQuery({ name: 'offset', required: false, schema: { type: 'integer', minimum: 0, default: 0 } }),
  );
}

/** start_time..end_time of the metrics routes (end before start is 400). */
function RangeQueryDocs(): MethodDecorator {
  return applyDecorators(
    ApiQuery({ name: 'start_time', required: false, description: `${TIME}; default end_time minus 24 h` }),
    ApiQuery({ name: 'end_time', required: false, description: `${TIME}; default now` }),
  );
}

/** Admin REST API (SPEC 5). Admin role required (403 for users), rate limited per admin. */
@ApiTags('admin')
@ApiBearerAuth(BEARER_AUTH)
@ApiErrors(HttpStatus.UNAUTHORIZED, HttpStatus.FORBIDDEN, HttpStatus.TOO_MANY_REQUESTS)
@Controller('admin')
@AdminOnly()
@UseGuards(AdminRateLimitGuard)
export class AdminController {
  constructor(private readonly admin: AdminService) {}

  @Get('sessions')
  @ApiOperation({ summary: 'Sessions, filtered, sorted and paged: a bare array (total in X-Total-Count)' })
  @ListQueryDocs()
  @ApiQuery({ name: 'user_id', required: false, description: 'Exact user id' })
  @ApiQuery({
    name: 'user_id_contains',
    required: false,
    schema: { type: 'string', maxLength: USER_SEARCH_MAX_CHARS },
    description: '[ext] Case-insensitive part of the user id (ignored when user_id is given)',
  })
  @ApiOkResponse({ type: [SessionRowDto], headers: TOTAL_COUNT })
  @ApiErrors(HttpStatus.BAD_REQUEST)
  async sessions(
    @Query() query: QueryParams,
    @Res({ passthrough: true }) response: Response,
  ): Promise<SessionRow[]> {
    const { rows, total } = await this.admin.list(parseListQuery(query));
    response.setHeader('X-Total-Count', String(total));
    return rows;
  }

  @Get('users/:userId/sessions')
  @ApiOperation({ summary: "One user's sessions: a bare array (total in X-Total-Count)" })
  @ApiParam({ name: 'userId' })
  @ListQueryDocs()
  @ApiOkResponse({ type: [SessionRowDto], headers: TOTAL_COUNT })
  @ApiErrors(HttpStatus.BAD_REQUEST)
  async userSessions(
    @Param('userId') userId: string,
    @Query() query: QueryParams,
    @Res({ passthrough: true }) response: Response,
  ): Promise<SessionRow[]> {
    const { rows, total } = await this.admin.list(parseListQuery(query, userId));
    response.setHeader('X-Total-Count', String(total));
    return rows;
  }

  @Get('sessions/:id')
  @ApiOperation({ summary: 'A session with its messages and takeover log' })
  @ApiParam({ name: 'id', description: 'Session id' })
  @ApiOkResponse({ type: AdminSessionDetailDto })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND)
  detail(
    @CurrentPrincipal() principal: Principal,
    @Param('id', ClientIdPipe) id: string,
  ): Promise<AdminSessionDetail> {
    return this.admin.detail(principal, id);
  }

  @Post('sessions/:id/resolve')
  @ApiOperation({
    summary: 'Mark the help request resolved (help_state); dashboards get a help_resolved notification',
  })
  @ApiParam({ name: 'id', description: 'Session id' })
  @ApiNoContentResponse({ description: 'Resolved (also when it already was)' })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND, HttpStatus.CONFLICT)
  @HttpCode(HttpStatus.NO_CONTENT)
  async resolve(
    @CurrentPrincipal() principal: Principal,
    @Param('id', ClientIdPipe) id: string,
    @Query() query: QueryParams,
  ): Promise<void> {
    rejectUnknown(query, []);
    await this.admin.resolveHelp(principal, id);
  }

  @Get('canned-replies')
  @ApiOperation({ summary: 'Replies an admin can insert while assisting (ADMIN_CANNED_REPLIES)' })
  @ApiOkResponse({ type: CannedRepliesDto })
  cannedReplies(@Query() query: QueryParams): { replies: string[] } {
    rejectUnknown(query, []);
    return this.admin.cannedReplies();
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Dashboard numbers over start_time..end_time (default: the last 24 h)' })
  @RangeQueryDocs()
  @ApiOkResponse({ type: AdminMetricsDto })
  @ApiErrors(HttpStatus.BAD_REQUEST)
  metrics(@Query() query: QueryParams): Promise<AdminMetrics> {
    return this.admin.metrics(parseRangeQuery(query));
  }

  @Get('metrics/timeseries')
  @ApiOperation({ summary: 'Per-bucket sessions, concurrency, tokens and response time for charts' })
  @RangeQueryDocs()
  @ApiQuery({ name: 'bucket', required: false, enum: Object.keys(BUCKETS), description: 'Default: by span' })
  @ApiOkResponse({ type: TimeseriesDto })
  @ApiErrors(HttpStatus.BAD_REQUEST)
  timeseries(@Query() query: QueryParams): Promise<{ bucket_ms: number; buckets: TimeseriesBucket[] }> {
    return this.admin.timeseries(parseRangeQuery(query, true));
  }

  @Post('takeover/:id')
  @ApiOperation({ summary: 'Take a session over (atomic: of two admins racing, exactly one wins)' })
  @ApiParam({ name: 'id', description: 'Session id' })
  @ApiOkResponse({ type: TakeoverDto, description: 'Taken over (also when the same admin asks again)' })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND, HttpStatus.CONFLICT)
  @HttpCode(HttpStatus.OK)
  takeover(
    @CurrentPrincipal() principal: Principal,
    @Param('id', ClientIdPipe) id: string,
    @Query() query: QueryParams,
  ) {
    rejectUnknown(query, []);
    return this.admin.takeover(principal, id);
  }

  @Delete('takeover/:id')
  @ApiOperation({ summary: 'End the takeover (the assisting admin); `admin_leave` is sent to the session' })
  @ApiParam({ name: 'id', description: 'Session id' })
  @ApiNoContentResponse({ description: 'Takeover ended' })
  @ApiErrors(HttpStatus.BAD_REQUEST, HttpStatus.NOT_FOUND, HttpStatus.CONFLICT)
  @HttpCode(HttpStatus.NO_CONTENT)
  async leave(
    @CurrentPrincipal() principal: Principal,
    @Param('id', ClientIdPipe) id: string,
  ): Promise<void> {
    await this.admin.leave(principal, id);
  }
}
