/**
 * npm start: the function running locally as it runs in Lambda, on the embedded default (SQLite under .local/,
 * a generated development master key, no AWS). Encrypts and decrypts the sample events through the handler and
 * prints the responses, cold and warm timings, and the metrics.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

// The function's logs and EMF lines go to stderr so that stdout reads as a walkthrough.
const out = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
const say = (text = '') => out(text + '\n');
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

async function main(): Promise<void> {
  const events = path.join(__dirname, '..', 'functions', 'encrypt-decrypt', 'events');
  const encryptEvent = JSON.parse(readFileSync(path.join(events, 'encrypt.json'), 'utf8'));

  let start = process.hrtime.bigint();
  const fn = await import('../functions/encrypt-decrypt/handler.js');
  await fn.ready;
  const initMs = ms(start);

  start = process.hrtime.bigint();
  const first = await fn.handler(encryptEvent);
  const coldMs = ms(start);
  say('encrypt (cold: the factory loads or creates the system and intermediate keys)');
  say('> ' + JSON.stringify(encryptEvent));
  say('< ' + JSON.stringify(first, null, 2).replace(/\n/g, '\n  '));

  start = process.hrtime.bigint();
  const second = await fn.handler({ ...encryptEvent, Name: 'encrypt-again' });
  const warmMs = ms(start);

  if (!('DRR' in first)) throw new Error('encrypt returned no DRR');
  const decryptEvent = { Name: 'decrypt-partition-1', Partition: encryptEvent.Partition, DRR: first.DRR };
  start = process.hrtime.bigint();
  const decrypted = await fn.handler(decryptEvent);
  const decryptMs = ms(start);
  say('\ndecrypt (warm: keys come from the caches)');
  say('< ' + JSON.stringify(decrypted, null, 2).replace(/\n/g, '\n  '));
  if ('Payload' in decrypted) {
    say(`\nplaintext: ${JSON.stringify(Buffer.from(decrypted.Payload, 'base64').toString('utf8'))}`);
  }

  const m = second.Metrics;
  say('\n| phase | time |');
  say('|---|---:|');
  say(`| INIT (module load, factory, secure memory) | ${initMs.toFixed(1)} ms |`);
  say(`| first encrypt (cold unless ASHERAH_PREWARM_PARTITIONS loaded its keys at INIT) | ${coldMs.toFixed(2)} ms |`);
  say(`| second encrypt (warm) | ${warmMs.toFixed(2)} ms |`);
  say(`| decrypt (warm) | ${decryptMs.toFixed(2)} ms |`);
  say(
    `\nafter two encrypts: KMS calls ${m.KmsCalls}, metastore calls ${m.MetastoreCalls}, cache hits ${m.CacheHits}, ` +
      `secrets in use ${m.SecretsInUse}, locked ${m.LockedBytes} bytes (RLIMIT_MEMLOCK ${m.MemlockLimitBytes})`,
  );
  say('\nNext: `npm run invoke -- functions/encrypt-decrypt/events/encrypt.json`, `npm run doctor`, `npm test`.');
}

main().catch((err: Error) => {
  say(`${err.name}: ${err.message}`);
  process.exitCode = 1;
});
