import {
  intermediateKeyId,
  isKeyId,
  isValidIntermediateKeyId,
  systemKeyId,
  truncateToMinute,
} from '../../../layer/src/appencryption/key-ids';
import { ConfigError } from '../../../layer/src/errors';

describe('key ids (asherah-spec §1.2)', () => {
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

  it('concatenates parts unescaped, like upstream, so underscores can make ids collide', () => {
    expect(intermediateKeyId('a_b', 'c', 'd')).toBe(intermediateKeyId('a', 'b_c', 'd'));
    expect(intermediateKeyId('<&>', 's', 'p')).toBe('_IK_<&>_s_p');
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

  it('with a suffix, accepts the suffixed id and any id starting with the unsuffixed one (other regions)', () => {
    expect(isValidIntermediateKeyId('_IK_p_s_prod_us-west-2', 'p', 's', 'prod', 'us-west-2')).toBe(true);
    expect(isValidIntermediateKeyId('_IK_p_s_prod_eu-west-1', 'p', 's', 'prod', 'us-west-2')).toBe(true);
    expect(isValidIntermediateKeyId('_IK_p_s_prod', 'p', 's', 'prod', 'us-west-2')).toBe(true);
    expect(isValidIntermediateKeyId('_IK_other_s_prod_us-west-2', 'p', 's', 'prod', 'us-west-2')).toBe(false);
  });

  it('is a plain prefix test with a suffix, as upstream: a longer product name also passes', () => {
    // Go strings.Index(id, unsuffixed) == 0 and Java startsWith behave the same way.
    expect(isValidIntermediateKeyId('_IK_p_s_product2', 'p', 's', 'product', 'us-west-2')).toBe(true);
  });
});

describe('truncateToMinute and isKeyId', () => {
  it('truncates SK/IK Created to the minute (asherah-spec §1.3)', () => {
    expect(truncateToMinute(1795858178)).toBe(1795858140);
    expect(truncateToMinute(1795858140)).toBe(1795858140);
    expect(truncateToMinute(1795858199.999)).toBe(1795858140);
    expect(truncateToMinute(59)).toBe(0);
  });

  it('recognises system and intermediate key ids by their prefix', () => {
    expect(isKeyId('_SK_s_p')).toBe(true);
    expect(isKeyId('_IK_id_s_p')).toBe(true);
    expect(isKeyId('_DRK_x')).toBe(false);
    expect(isKeyId('SK_s_p')).toBe(false);
    expect(isKeyId('')).toBe(false);
  });
});
