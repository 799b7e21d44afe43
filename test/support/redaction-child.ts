/**
 * Run in a child process by the redaction tests: uses keys, then, in a later turn of the event loop (key pages
 * PROT_NONE again), logs and serializes every SDK object. Touching a key page would end the process with SIGSEGV;
 * the child prints one JSON line with what the logs held.
 */
import { inspect } from 'node:util';
import { Logger } from '@aws-lambda-powertools/logger';
import { MemoryMetastore, SecretFactory, SessionFactory, StaticKms } from '../../layer/src/index';

async function main() {
  const secrets = new SecretFactory();
  const kms = new StaticKms('5a'.repeat(32), secrets);
  const factory = SessionFactory.create({ serviceName: 'svc', productId: 'prod', metastore: new MemoryMetastore(), kms, secrets });
  const session = factory.getSession('alice');
  await session.encrypt('hello');
  await new Promise((resolve) => setTimeout(resolve, 20)); // a later turn: the key pages are closed
  const written: string[] = [];
  const logger = new Logger({ serviceName: 'redaction', logLevel: 'INFO' });
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stdout.write;
  try {
    logger.info('objects', { session, factory, kms, secrets });
  } finally {
    process.stdout.write = write;
  }
  const texts = [
    ...written,
    inspect({ session, factory, kms, secrets }, { depth: Infinity, showHidden: true }),
    JSON.stringify({ session, factory, kms, secrets }),
  ];
  console.log(JSON.stringify({ texts }));
  await factory.close();
  kms.close();
  secrets.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
