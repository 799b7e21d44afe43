/**
 * The encrypt/decrypt function: a thin handler over the layer's public API. Events are those of Asherah's Go
 * Lambda sample (`Payload` → encrypt, `DRR` → decrypt); every response carries this execution environment's
 * running `Metrics`, which also go to CloudWatch as EMF.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics as EmfMetrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  dataRowRecordToJsonObject,
  EventValidationError,
  hostReport,
  type DataRowRecordJson,
  type FactoryMetrics,
  type SessionFactory,
} from 'asherah-layer';
import { loadConfig, type FunctionConfig } from './config';
import { responseProblem } from '../common/limits';
import { parseEvent } from './event';
import { createFactory } from './factory';
import { boundedField } from './log-fields';

export interface ResponseMetrics {
  ColdStart: boolean;
  InvocationCount: number;
  KmsCalls: number;
  MetastoreCalls: number;
  CacheHits: number;
  CacheMisses: number;
  SecretsInUse: number;
  LockedBytes: number;
  MemlockLimitBytes: number | 'unlimited';
}

export type Response = ({ DRR: DataRowRecordJson } | { Payload: string }) & { Metrics: ResponseMetrics };

const logger = new Logger({ serviceName: 'asherah-encrypt-decrypt' });
const emf = new EmfMetrics({ namespace: 'AsherahStarter', serviceName: 'encrypt-decrypt' });

interface State {
  config: FunctionConfig;
  factory: SessionFactory;
  memlockLimit: number | 'unlimited';
}

// Module scope on purpose: the factory, its key caches and these counters survive across the invocations of
// this execution environment, which is what makes warm invocations free of KMS and metastore calls.
const state: Promise<State> = initialize();
let invocationCount = 0;
let previous: FactoryMetrics | undefined;

/** Settles when INIT is done: the factory is built and the pre-warm partitions are loaded. init.mjs awaits it. */
export const ready: Promise<void> = state.then(
  () => undefined,
  (err: unknown) => {
    // Logged once here, where INIT failed; every invocation throws it again, with its class as errorType.
    logger.error('INIT failed', { errorType: (err as Error)?.name, errorMessage: (err as Error)?.message });
  },
);

async function initialize(): Promise<State> {
  const config = loadConfig();
  const host = hostReport();
  const memlockLimit = host.capIpcLock ? 'unlimited' : (host.memlockSoft ?? 0);
  logger.info('secure memory', {
    memlockSoft: host.memlockSoft,
    memlockHard: host.memlockHard,
    capIpcLock: host.capIpcLock,
    keysThatFit: host.keysThatFit,
    verdict: host.verdict,
    mlock: 'strict',
  });
  // Warns (through this logger) when the master key is static, and where it came from.
  const factory = createFactory(config, { warn: (message, details) => logger.warn(message, details ?? {}) });
  if (config.prewarmPartitions.length > 0) {
    const started = Date.now();
    await factory.prewarm(config.prewarmPartitions);
    logger.info('pre-warmed keys', { partitions: config.prewarmPartitions.length, ms: Date.now() - started });
  }
  return { config, factory, memlockLimit };
}

export async function handler(event: unknown): Promise<Response> {
  const { factory, memlockLimit } = await state;
  const coldStart = invocationCount === 0;
  invocationCount++;
  const request = parseEvent(event);
  const session = factory.getSession(request.partition);
  let body: { DRR: DataRowRecordJson } | { Payload: string };
  try {
    if (request.kind === 'encrypt') {
      const tooLarge = responseProblem(request.payload.length, (bytes) => session.recordSize(bytes));
      if (tooLarge !== undefined) throw new EventValidationError(tooLarge);
      body = { DRR: dataRowRecordToJsonObject(await session.encrypt(request.payload)) };
    } else {
      body = { Payload: (await session.decrypt(request.drr)).toString('base64') };
    }
  } finally {
    session.close();
  }
  const now = factory.metrics();
  publishEmf(now, coldStart);
  // A client sets Name's size (up to 6 MiB): log its start and its length, not the whole of it.
  logger.info(request.kind, { ...boundedField('name', request.name), coldStart, invocation: invocationCount });
  return {
    ...body,
    Metrics: {
      ColdStart: coldStart,
      InvocationCount: invocationCount,
      KmsCalls: now.kmsCalls,
      MetastoreCalls: now.metastoreCalls,
      CacheHits: now.cacheHits,
      CacheMisses: now.cacheMisses,
      SecretsInUse: now.secretsInUse,
      LockedBytes: now.secureMemory.lockedBytes,
      MemlockLimitBytes: memlockLimit,
    },
  };
}

/** EMF carries what this invocation added (sums over time give the running counts) and the gauges as they are. */
function publishEmf(now: FactoryMetrics, coldStart: boolean): void {
  const before = previous;
  previous = now;
  const delta = (pick: (m: FactoryMetrics) => number) => pick(now) - (before ? pick(before) : 0);
  emf.addMetric('ColdStart', MetricUnit.Count, coldStart ? 1 : 0);
  emf.addMetric('KmsCalls', MetricUnit.Count, delta((m) => m.kmsCalls));
  emf.addMetric('MetastoreCalls', MetricUnit.Count, delta((m) => m.metastoreCalls));
  emf.addMetric('CacheHits', MetricUnit.Count, delta((m) => m.cacheHits));
  emf.addMetric('CacheMisses', MetricUnit.Count, delta((m) => m.cacheMisses));
  emf.addMetric('SecretsInUse', MetricUnit.Count, now.secretsInUse);
  emf.addMetric('LockedBytes', MetricUnit.Bytes, now.secureMemory.lockedBytes);
  emf.publishStoredMetrics();
}
