/**
 * npm start: a first look at what runs today. Until the encrypt/decrypt function lands, it shows the secure
 * memory layer: keys made in locked pages, used by node:crypto without a heap copy, and what this host allows.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { hostReport, SecretFactory } from '../layer/src/index';

const report = hostReport();
console.log(`host: ${report.platform}/${report.arch} (${report.hostKind}), RLIMIT_MEMLOCK ${report.memlockSoft}, ` +
  `CAP_IPC_LOCK ${report.capIpcLock ? 'yes' : 'no'}; verdict: ${report.verdict}`);

const factory = new SecretFactory({ mlock: report.verdict === 'no-locked-memory' ? 'best-effort' : 'strict' });
const key = factory.createRandom(32);
const iv = randomBytes(12);
const message = 'hello from locked memory';
const sealed = key.withBytes((bytes) => {
  const cipher = createCipheriv('aes-256-gcm', bytes, iv);
  return Buffer.concat([cipher.update(message, 'utf8'), cipher.final(), cipher.getAuthTag()]);
});
const opened = key.withBytes((bytes) => {
  const decipher = createDecipheriv('aes-256-gcm', bytes, iv);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]).toString();
});
console.log(`AES-256-GCM with a key that never left locked memory: "${opened}"`);

const many = Array.from({ length: 20_000 }, () => factory.createRandom(32));
const stats = factory.stats();
console.log(`20,001 live keys: ${stats.residentSecrets} resident in ${stats.lockedBytes} locked bytes, ` +
  `${stats.sealedSecrets} sealed; keys that fit in the locked budget: ${stats.keysThatFit}`);
many.forEach((s) => s.close());
factory.close();
console.log('all keys zeroed. Next: `npm run doctor` for this host, `npm test` for the suite.');
