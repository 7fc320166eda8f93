export * from './auth.guard';
export * from './auth.module';
export * from './principal';
export * from './token.service';
