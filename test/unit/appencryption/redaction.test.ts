/**
 * Logging or serializing an SDK object (Session, SessionFactory, StaticKms, AwsKms) shows a redacted summary:
 * nothing reachable by enumeration, toJSON, util.inspect or structuredClone leads to key memory, in the turn a key
 * is used (no live key bytes in a log) and in a later one (no SIGSEGV from a PROT_NONE page).
 */
import { inspect } from 'node:util';
import { Logger } from '@aws-lambda-powertools/logger';
import { AwsKms, MemoryMetastore, SecretFactory, SessionFactory, StaticKms } from '../../../layer/src/index';
import { lastJson, runTs } from '../../support/unprivileged';

const MASTER_HEX = '5a'.repeat(32);
/** The master key's bytes as each way a log could spell them: hex, base64, latin1, a TypedArray's numbers. */
const MASTER_SPELLINGS = ['5a5a5a5a5a5a5a5a', 'WlpaWlpaWlpa', 'ZZZZZZZZZZZZ', '90, 90, 90, 90'];

function objects() {
  const secrets = new SecretFactory();
  const kms = new StaticKms(MASTER_HEX, secrets);
  const factory = SessionFactory.create({ serviceName: 'svc', productId: 'prod', metastore: new MemoryMetastore(), kms, secrets });
  return { secrets, kms, factory, session: factory.getSession('alice') };
}

test('util.inspect (any depth, hidden fields) and JSON.stringify give summaries, in the turn a key is used', async () => {
  const o = objects();
  await o.session.encrypt('hello');
  await o.session.decrypt(await o.session.encrypt('again')); // keys used in this very turn
  const shown = inspect({ session: o.session, factory: o.factory, kms: o.kms }, { depth: Infinity, showHidden: true });
  const json = JSON.stringify({ session: o.session, factory: o.factory, kms: o.kms });
  for (const text of [shown, json]) {
    for (const spelling of MASTER_SPELLINGS) expect(text).not.toContain(spelling);
    expect(text).not.toMatch(/Uint8Array|ArrayBuffer|Buffer|Secret[^F]/);
  }
  expect(inspect(o.session)).toBe('Session { closed: false }');
  expect(inspect(o.factory)).toBe('SessionFactory { closed: false }');
  expect(inspect(o.kms)).toBe('StaticKms { closed: false }');
  expect(JSON.parse(json)).toEqual({
    session: { Session: { closed: false } },
    factory: { SessionFactory: { closed: false } },
    kms: { StaticKms: { closed: false } },
  });
  await o.factory.close();
  expect(inspect(o.factory)).toBe('SessionFactory { closed: true }');
  o.kms.close();
  o.secrets.close();
});

test('structuredClone and enumeration reach no key: only public, key-free fields are own properties', async () => {
  const o = objects();
  await o.session.encrypt('hello');
  expect(Object.keys(o.factory)).toEqual([]);
  expect(Object.keys(o.kms)).toEqual([]);
  expect(Object.keys(o.session)).toEqual(['partition']);
  expect(structuredClone(o.session)).toEqual({ partition: o.session.partition });
  expect(structuredClone(o.factory)).toEqual({});
  expect(structuredClone(o.kms)).toEqual({});
  await o.factory.close();
  o.kms.close();
  o.secrets.close();
});

test('the Powertools Logger writes the summaries', async () => {
  const o = objects();
  await o.session.encrypt('hello');
  const lines: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation(((chunk: string) => (lines.push(String(chunk)), true)) as typeof process.stdout.write);
  const saved = process.env.POWERTOOLS_DEV;
  delete process.env.POWERTOOLS_DEV;
  try {
    new Logger({ serviceName: 'redaction', logLevel: 'INFO' }).info('objects', { session: o.session, factory: o.factory, kms: o.kms });
  } finally {
    spy.mockRestore();
    if (saved !== undefined) process.env.POWERTOOLS_DEV = saved;
  }
  const text = lines.join('');
  expect(text).toContain('"SessionFactory":{"closed":false}');
  for (const spelling of MASTER_SPELLINGS) expect(text).not.toContain(spelling);
  await o.factory.close();
  o.kms.close();
  o.secrets.close();
});

test('AwsKms shows its regions, not its clients or secrets', () => {
  const secrets = new SecretFactory();
  const kms = new AwsKms({
    regionMap: { 'us-west-2': 'arn:aws:kms:us-west-2:111122223333:key/k' },
    clients: { 'us-west-2': { send: async () => ({}) } as never },
    secrets,
  });
  expect(inspect(kms, { depth: Infinity, showHidden: true })).toBe("AwsKms { regions: 'us-west-2', closed: false }");
  expect(Object.keys(kms)).toEqual([]);
  kms.close();
  secrets.close();
});

test('logging every object in a later turn (key pages PROT_NONE) neither crashes nor shows key bytes', () => {
  const result = runTs('test/support/redaction-child.ts', []);
  expect(result.signal).toBeNull();
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  const { texts } = lastJson<{ texts: string[] }>(result.stdout);
  const all = texts.join('\n');
  expect(all).toContain('SessionFactory');
  for (const spelling of MASTER_SPELLINGS) expect(all).not.toContain(spelling);
});
