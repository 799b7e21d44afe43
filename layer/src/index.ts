/**
 * The public API of the layer (the package `asherah-layer`): only what users need. Functions and scripts import
 * it alone; tests and benchmarks of internals import those by path, on purpose (test/unit/public-api.test.ts pins
 * the list).
 */
export { AsherahError, ConfigError } from './errors.js';
export * from './securememory/index.js';
export * from './appencryption/index.js';
