// Lambda's entry point (handler "init.handler"). An ES module only so that top-level await makes the INIT phase
// wait for the key pre-warm; the function itself is CommonJS (index.js, bundled by esbuild), because an ES module
// ignores NODE_PATH and could not import the layer package (/opt/nodejs/node_modules/asherah-layer) by name,
// while CommonJS require() can. See docs/cold-start-caching.md.
import fn from './index.js';

await fn.ready;

export const handler = fn.handler;
