// The AWS SDK v3 KMS clients AwsKms takes (aws-kms.ts): kmsClientsFor builds one per region with request timeouts,
// and loadKmsSdk loads the SDK lazily, with a require that bundlers leave alone, so that the layer loads where
// @aws-sdk is absent (the layer does not ship it; the Lambda Node.js runtime provides it).
import { createRequire } from 'node:module';
import type { KMSClient, KMSClientConfig } from '@aws-sdk/client-kms';
import { ConfigError } from '../../errors.js';
import { clientSettings, DEFAULT_KMS_TIMEOUTS } from '../config/aws-client-timeouts.js';
import { checkRegionMap } from '../config/region-map.js';

export type KmsSdk = typeof import('@aws-sdk/client-kms');

/** Options of one regional KMSClient, as `kmsClientsFor` takes them (the region comes from the map). */
export type KmsClientOptions = Omit<KMSClientConfig, 'region'>;

/**
 * Timeouts for clients made by kmsClientsFor when the caller gives no requestHandler (aws-client-timeouts.ts). A
 * region that hangs would otherwise stall every fallback behind it (a Lambda would time out before trying the
 * next region).
 */
export const DEFAULT_KMS_REQUEST_HANDLER = Object.freeze(clientSettings(DEFAULT_KMS_TIMEOUTS).requestHandler);

/**
 * One KMSClient per region of `regionMap`, for AwsKms's `clients`. `config` applies to every region (or is a
 * function of the region); without a requestHandler the clients get DEFAULT_KMS_REQUEST_HANDLER's timeouts. The
 * clients are the caller's: destroy them when done.
 */
export function kmsClientsFor(
  regionMap: Readonly<Record<string, string>>,
  config?: KmsClientOptions | ((region: string) => KmsClientOptions),
): Record<string, KMSClient> {
  const regions = checkRegionMap(regionMap);
  const sdk = loadKmsSdk();
  const clients: Record<string, KMSClient> = {};
  for (const region of regions) {
    const options = typeof config === 'function' ? config(region) : (config ?? {});
    clients[region] = new sdk.KMSClient({ requestHandler: { ...DEFAULT_KMS_REQUEST_HANDLER }, ...options, region });
  }
  return clients;
}

/**
 * The SDK, required at run time only. createRequire keeps bundlers (esbuild) from inlining it, and a type-only
 * import keeps it out of this module's load: the layer must load where @aws-sdk is absent.
 */
export function loadKmsSdk(): KmsSdk {
  try {
    return createRequire(__filename)('@aws-sdk/client-kms') as KmsSdk;
  } catch (err) {
    throw new ConfigError(
      'KMS "aws" needs the package @aws-sdk/client-kms, which could not be loaded; the AWS Lambda Node.js ' +
        'runtime provides it, elsewhere install it (npm install @aws-sdk/client-kms)',
      { cause: err },
    );
  }
}
