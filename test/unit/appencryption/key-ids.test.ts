import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  checkKeyIdNames,
  intermediateKeyId,
  isRegionName,
  systemKeyId,
} from '../../../layer/src/appencryption/key-ids';
import { ConfigError } from '../../../layer/src/errors';
import { isValidIntermediateKeyId } from '../../support/key-ids';

describe('key ids (docs/wire-format.md §1.2)', () => {
  it('names the system key _SK_{service}_{product}, service first', () => {
    expect(systemKeyId('servicefoo', 'productbar')).toBe('_SK_servicefoo_productbar');
    expect(systemKeyId('service', 'product', 'us-west-2')).toBe('_SK_service_product_us-west-2');
  });

  it('names the intermediate key _IK_{partition}_{service}_{product}', () => {
    expect(intermediateKeyId('partitionId', 'servicefoo', 'productbar')).toBe('_IK_partitionId_servicefoo_productbar');
    expect(intermediateKeyId('p', 's', 'prod', 'eu-west-1')).toBe('_IK_p_s_prod_eu-west-1');
  });

  it('treats an empty suffix as no suffix, as Go does', () => {
    expect(systemKeyId('s', 'p', '')).toBe('_SK_s_p');
    expect(intermediateKeyId('id', 's', 'p', '')).toBe('_IK_id_s_p');
  });

  it('concatenates parts unescaped, like upstream (the names are checked where they enter instead)', () => {
    expect(intermediateKeyId('<&>', 's', 'p')).toBe('_IK_<&>_s_p');
    expect(intermediateKeyId('a_b', 's', 'p', 'us-west-2')).toBe('_IK_a_b_s_p_us-west-2');
  });

  it('rejects an empty partition, service or product with ConfigError', () => {
    expect(() => intermediateKeyId('', 's', 'p')).toThrow(ConfigError);
    expect(() => intermediateKeyId('', 's', 'p')).toThrow(/partition id cannot be empty/);
    expect(() => systemKeyId('', 'p')).toThrow(/service name \(serviceName, ServiceName in AsherahConfig\) must be a non-empty string/);
    expect(() => systemKeyId('s', '')).toThrow(/product id \(productId, ProductID in AsherahConfig\) must be a non-empty string/);
    expect(() => intermediateKeyId('id', 's', '')).toThrow(ConfigError);
    expect(() => isValidIntermediateKeyId('_IK__s_p', '', 's', 'p')).toThrow(ConfigError);
  });
});

describe('isValidIntermediateKeyId (decrypt-side partition check)', () => {
  it('accepts only the exact IK id without a suffix', () => {
    expect(isValidIntermediateKeyId('_IK_p_s_prod', 'p', 's', 'prod')).toBe(true);
    expect(isValidIntermediateKeyId('_IK_p_s_prod_us-west-2', 'p', 's', 'prod')).toBe(false);
    expect(isValidIntermediateKeyId('_IK_other_s_prod', 'p', 's', 'prod')).toBe(false);
    expect(isValidIntermediateKeyId('_IK_p_s_pro', 'p', 's', 'prod')).toBe(false);
  });

  it('with a suffix, accepts its own id, unsuffixed or followed by one region name (records of other regions)', () => {
    expect(isValidIntermediateKeyId('_IK_p_s_prod_us-west-2', 'p', 's', 'prod', 'us-west-2')).toBe(true);
    expect(isValidIntermediateKeyId('_IK_p_s_prod_eu-west-1', 'p', 's', 'prod', 'us-west-2')).toBe(true);
    expect(isValidIntermediateKeyId('_IK_p_s_prod_us-gov-east-1', 'p', 's', 'prod', 'us-west-2')).toBe(true);
    expect(isValidIntermediateKeyId('_IK_p_s_prod', 'p', 's', 'prod', 'us-west-2')).toBe(true);
    expect(isValidIntermediateKeyId('_IK_other_s_prod_us-west-2', 'p', 's', 'prod', 'us-west-2')).toBe(false);
  });

  it("with a suffix, refuses what upstream's prefix test lets through: other partitions and longer products", () => {
    // Go strings.Index(id, unsuffixed) == 0 and Java startsWith accept all of these.
    expect(isValidIntermediateKeyId('_IK_alice_svc_prod_x_svc_prod', 'alice', 'svc', 'prod', 'us-west-2')).toBe(false);
    expect(isValidIntermediateKeyId('_IK_alice_svc_prod_svc_prod', 'alice', 'svc', 'prod', 'us-west-2')).toBe(false);
    expect(isValidIntermediateKeyId('_IK_p_s_product2', 'p', 's', 'product', 'us-west-2')).toBe(false);
    expect(isValidIntermediateKeyId('_IK_p_s_prod_', 'p', 's', 'prod', 'us-west-2')).toBe(false);
    expect(isValidIntermediateKeyId('_IK_p_s_prod_us-west-2_us-west-2', 'p', 's', 'prod', 'us-west-2')).toBe(false);
    expect(isValidIntermediateKeyId('_IK_p_s_prod_US-WEST-2', 'p', 's', 'prod', 'us-west-2')).toBe(false);
  });

  it('accepts a legacy deployment\'s own suffix whatever its shape, and only region names besides', () => {
    expect(isValidIntermediateKeyId('_IK_p_s_prod_primary', 'p', 's', 'prod', 'primary')).toBe(true);
    expect(isValidIntermediateKeyId('_IK_p_s_prod_secondary', 'p', 's', 'prod', 'primary')).toBe(false);
  });
});

describe('checkKeyIdNames: names whose key ids cannot collide', () => {
  it('refuses "_" in the service or product, a region-shaped product and a suffix that is not a region', () => {
    expect(() => checkKeyIdNames('eu_billing', 'prod', undefined, false)).toThrow(ConfigError);
    expect(() => checkKeyIdNames('eu_billing', 'prod', undefined, false)).toThrow(
      /service name \(serviceName, ServiceName in AsherahConfig\) "eu_billing" contains "_".*_IK_acme_eu_billing_<product>.*legacyKeyIdNames: true/,
    );
    expect(() => checkKeyIdNames('svc', 'my_product', undefined, false)).toThrow(/product id .* "my_product" contains "_"/);
    expect(() => checkKeyIdNames('svc', 'us-west-2', undefined, false)).toThrow(/has the shape of an AWS region name/);
    expect(() => checkKeyIdNames('svc', 'prod', 'primary', false)).toThrow(/"primary" is not an AWS region name/);
    expect(() => checkKeyIdNames('svc', 'prod', 'us_west_2', false)).toThrow(ConfigError);
  });

  it('accepts hyphenated names and real region names, including GovCloud, ISO and China regions', () => {
    for (const suffix of ['us-west-2', 'us-gov-east-1', 'us-iso-east-1', 'eu-isoe-west-1', 'cn-north-1', 'ap-southeast-7']) {
      expect(() => checkKeyIdNames('asherah-starter', 'encrypt-decrypt', suffix, false)).not.toThrow();
      expect(isRegionName(suffix)).toBe(true);
    }
    for (const name of ['us-west', 'west-2', 'us_west_2', 'US-WEST-2', 'us-west-2a', 'u-west-2', '']) {
      expect(isRegionName(name)).toBe(false);
    }
  });

  it("accepts every region of the AWS SDK's partitions table as a suffix (eusc-de-east-1 included), and nothing that is not region-shaped", () => {
    // The table @aws-sdk/core resolves endpoints with, read from the installed SDK.
    const file = path.join(path.dirname(require.resolve('@aws-sdk/core/package.json')), 'dist-es/submodules/client/util-endpoints/lib/aws/partitions.js');
    const text = readFileSync(file, 'utf8');
    const table = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as {
      partitions: { id: string; regions: Record<string, unknown> }[];
    };
    const regions = table.partitions.flatMap((partition) => Object.keys(partition.regions));
    expect(regions).toEqual(expect.arrayContaining(['us-west-2', 'eusc-de-east-1', 'us-gov-west-1', 'cn-north-1', 'aws-global']));
    for (const region of regions) {
      expect({ region, regionShaped: isRegionName(region) }).toEqual({ region, regionShaped: true });
      expect(() => checkKeyIdNames('asherah-starter', 'encrypt-decrypt', region, false)).not.toThrow();
    }
    for (const name of ['attacker.example/#', '__proto__', 'constructor', 'eusc', 'eusc-1', 'aws', 'global', 'aws-global-1', 'eusc-de-east']) {
      expect({ name, regionShaped: isRegionName(name) }).toEqual({ name, regionShaped: false });
    }
  });

  it('lets a legacy deployment keep its names with the opt-in, but never empty ones', () => {
    expect(() => checkKeyIdNames('eu_billing', 'us-west-2', 'primary', true)).not.toThrow();
    expect(() => checkKeyIdNames('', 'prod', undefined, true)).toThrow(/must be a non-empty string/);
  });
});
