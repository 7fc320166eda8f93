export * from './fake-server';
export * from './fake-openai';
export * from './fake-anthropic';
export * from './fake-dify';
