/**
 * The one check of an AWS KMS region map (region → key ARN) and its preferred region (docs/wire-format.md §9.2; Go
 * `NewBuilder` panics on an empty map and requires a preferred region with several). A map enters in three places:
 * AsherahConfig (RegionMap, PreferredRegion), the environment (ASHERAH_REGION_MAP or ASHERAH_KMS_KEY_ARN, with
 * ASHERAH_PREFERRED_REGION) and AwsKms's options (regionMap, preferredRegion). Each passes its RegionMapSource, so
 * that a message names what the user wrote, as key-ids.ts's NameSource does for names.
 */
import { ConfigError } from '../../errors.js';
import { isRegionName } from '../key-ids.js';

/** Where a region map came from, for the error messages. */
export interface RegionMapSource {
  /** The map itself: `config key RegionMap`, `ASHERAH_REGION_MAP`, `RegionMap (regionMap)`. */
  map: string;
  /** The map where a message lists its regions beside the preferred region: `RegionMap`, `ASHERAH_REGION_MAP`. */
  regions: string;
  /** The preferred region: `config key PreferredRegion`, `ASHERAH_PREFERRED_REGION`, `PreferredRegion (preferredRegion)`. */
  preferred: string;
  /**
   * Every value must be an ARN (`arn:…`). The environment asks for ARNs (its single-region form reads the region
   * from one); the SDK and AsherahConfig also take what KMS takes as a KeyId (a key id, an alias), as Go does.
   */
  arnsOnly?: boolean;
}

export const REGION_MAP_SOURCES = {
  /** AwsKms and kmsClientsFor options. */
  option: { map: 'RegionMap (regionMap)', regions: 'RegionMap', preferred: 'PreferredRegion (preferredRegion)' },
  /** setup() / SessionFactory.fromConfig. */
  config: { map: 'config key RegionMap', regions: 'RegionMap', preferred: 'config key PreferredRegion' },
  /** SessionFactory.fromEnv with ASHERAH_REGION_MAP. */
  env: { map: 'ASHERAH_REGION_MAP', regions: 'ASHERAH_REGION_MAP', preferred: 'ASHERAH_PREFERRED_REGION', arnsOnly: true },
  /** SessionFactory.fromEnv with ASHERAH_KMS_KEY_ARN (a map of the ARN's region alone). */
  envKeyArn: { map: 'ASHERAH_KMS_KEY_ARN', regions: 'ASHERAH_KMS_KEY_ARN', preferred: 'ASHERAH_PREFERRED_REGION', arnsOnly: true },
} as const satisfies Record<string, RegionMapSource>;

/** Checks the map alone and returns its regions, in map order. */
export function checkRegionMap(regionMap: unknown, source: RegionMapSource = REGION_MAP_SOURCES.option): string[] {
  if (regionMap === null || typeof regionMap !== 'object' || Array.isArray(regionMap)) {
    throw new ConfigError(`${source.map} must be an object of region → KMS key ARN`);
  }
  const entries = Object.entries(regionMap as Record<string, unknown>);
  if (entries.length === 0) {
    throw new ConfigError(`${source.map} is empty; give at least one region → KMS key ARN`);
  }
  for (const [region, arn] of entries) {
    if (region.trim() === '') throw new ConfigError(`${source.map} has an empty region name`);
    // A region names the KMS endpoint's host (kms.<region>.amazonaws.com): only region names, never "constructor".
    if (!isRegionName(region)) {
      throw new ConfigError(`${source.map} key ${JSON.stringify(region)} is not an AWS region name (e.g. us-west-2)`);
    }
    const ok = typeof arn === 'string' && (source.arnsOnly ? arn.startsWith('arn:') : arn.trim() !== '');
    if (!ok) {
      throw new ConfigError(
        `${source.map} entry ${JSON.stringify(region)} must be ` +
          (source.arnsOnly ? 'a key ARN (arn:aws:kms:<region>:<account>:key/<id>)' : 'a non-empty KMS key ARN string'),
      );
    }
  }
  return entries.map(([region]) => region);
}

/**
 * Checks the map and the preferred region; returns the regions in the order they are tried: the preferred region
 * first, then the others in map order (Go v2 `Builder.Build`, which uses random map order).
 */
export function regionOrder(
  regionMap: unknown,
  preferredRegion: unknown,
  source: RegionMapSource = REGION_MAP_SOURCES.option,
): string[] {
  const regions = checkRegionMap(regionMap, source);
  if (preferredRegion === undefined) {
    if (regions.length === 1) return regions;
    // Go: "preferred region must be set when using multiple regions".
    throw new ConfigError(
      `${source.preferred} must be set when ${source.regions} has more than one region (${regions.join(', ')})`,
    );
  }
  if (typeof preferredRegion !== 'string' || !regions.includes(preferredRegion)) {
    throw new ConfigError(
      `${source.preferred} ${describe(preferredRegion)} is not a region of ${source.regions} (${regions.join(', ')})`,
    );
  }
  return [preferredRegion, ...regions.filter((region) => region !== preferredRegion)];
}

// As JSON where it can be (a string is quoted); JSON.stringify throws for a BigInt and gives nothing for a symbol.
function describe(value: unknown): string {
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch {
    // fall through
  }
  return typeof value === 'symbol' ? value.toString() : typeof value === 'bigint' ? `${value}n` : typeof value;
}
