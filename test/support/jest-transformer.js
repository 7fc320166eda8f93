/**
 * Jest 30 on Node 20 cannot require() ES modules, and NestJS 12 (and a few other dependencies)
 * ship only ESM. This transformer compiles our TypeScript and those ESM packages to CommonJS with swc.
 * `import.meta` has no CommonJS form, so its few uses in dependencies are rewritten first.
 */
const { createTransformer } = require('@swc/jest');

const base = {
  jsc: {
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'commonjs', ignoreDynamic: false },
  sourceMaps: 'inline',
};

const typescript = createTransformer({
  ...base,
  jsc: { ...base.jsc, parser: { syntax: 'typescript', decorators: true } },
});
const javascript = createTransformer({ ...base, jsc: { ...base.jsc, parser: { syntax: 'ecmascript' } } });

function rewriteImportMeta(source) {
  return source
    .replace(/import\.meta\.url/g, "('file://' + __filename)")
    .replace(/import\.meta\.resolve\(/g, 'require.resolve(')
    .replace(/import\.meta\.dirname/g, '__dirname')
    .replace(/import\.meta\.filename/g, '__filename');
}

const CACHE_SALT = 'chatbox-esm-2';

module.exports = {
  process(source, filename, options) {
    if (filename.endsWith('.ts')) return typescript.process(source, filename, options);
    return javascript.process(rewriteImportMeta(source), filename, options);
  },
  getCacheKey(source, filename, options) {
    const inner = filename.endsWith('.ts') ? typescript : javascript;
    return `${CACHE_SALT}:${inner.getCacheKey(source, filename, options)}`;
  },
};
