import {
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
import type { Response } from 'express';
import { AdminOnly, CurrentPrincipal, Principal } from '@chatbox/common';
import { SessionRow } from '@chatbox/session';
import { AdminRateLimitGuard } from './admin-rate-limit.guard';
import { AdminMetrics, AdminService, AdminSessionDetail, TimeseriesBucket } from './admin.service';
import { parseListQuery, parseRangeQuery, Query as QueryParams, rejectUnknown } from './dto/admin-query';

/** Admin REST API (SPEC 5). Admin role required (403 for users), rate limited per admin. */
@Controller('admin')
@AdminOnly()
@UseGuards(AdminRateLimitGuard)
export class AdminController {
  constructor(private readonly admin: AdminService) {}

  @Get('sessions')
  async sessions(
    @Query() query: QueryParams,
    @Res({ passthrough: true }) response: Response,
  ): Promise<SessionRow[]> {
    const { rows, total } = await this.admin.list(parseListQuery(query));
    response.setHeader('X-Total-Count', String(total));
    return rows;
  }

  @Get('users/:userId/sessions')
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
  detail(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<AdminSessionDetail> {
    return this.admin.detail(principal, id);
  }

  @Get('metrics')
  metrics(@Query() query: QueryParams): Promise<AdminMetrics> {
    return this.admin.metrics(parseRangeQuery(query));
  }

  @Get('metrics/timeseries')
  timeseries(@Query() query: QueryParams): Promise<{ bucket_ms: number; buckets: TimeseriesBucket[] }> {
    return this.admin.timeseries(parseRangeQuery(query, true));
  }

  @Post('takeover/:id')
  @HttpCode(HttpStatus.OK)
  takeover(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Query() query: QueryParams) {
    rejectUnknown(query, []);
    return this.admin.takeover(principal, id);
  }

  @Delete('takeover/:id')
  @HttpCode(HttpStatus.NO_CONTENT)
  async leave(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<void> {
    await this.admin.leave(principal, id);
  }
}
