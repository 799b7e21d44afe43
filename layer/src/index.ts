/**
 * The public API of the layer: the only import path for functions, tests and benchmarks.
 */
export { AsherahError, ConfigError } from './errors.js';
export * from './securememory/index.js';
export * from './appencryption/index.js';
