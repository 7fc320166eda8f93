export * from './error-codes';
export * from './http-exception.filter';
