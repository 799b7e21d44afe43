'use strict';
/**
 * dynalite (an in-memory DynamoDB-protocol server) in its own process, for `npm run start:aws-local` and for tests
 * whose parent blocks its event loop while another process talks to DynamoDB (spawnSync of the Rust oracle, of
 * `npm run invoke`). Plain CommonJS so that bare `node` runs it without a loader.
 *
 * Listens on 127.0.0.1 with an ephemeral port and prints ONE JSON line {"port": n} on stdout once it listens. It
 * exits when its stdin closes, so it never outlives the process that started it.
 */
const dynalite = require('dynalite');

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
server.on('error', (err) => {
  process.stderr.write(`dynalite-server: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
