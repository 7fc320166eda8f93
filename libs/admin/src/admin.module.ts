import { Module } from '@nestjs/common';
import { SessionModule } from '@chatbox/session';
import { AdminRateLimitGuard } from './admin-rate-limit.guard';
import { AdminController } from './admin.controller';
import { AdminService } from './admin.service';

@Module({
  imports: [SessionModule],
  controllers: [AdminController],
  providers: [AdminService, AdminRateLimitGuard],
})
export class AdminModule {}
