export * from './pipes';
export * from './text-rules';
