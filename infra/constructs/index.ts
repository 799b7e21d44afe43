/**
 * The constructs to add Asherah to any CDK app: copy infra/constructs (and layer/src/appencryption/config/env.ts, see
 * environment.ts) and import from here.
 */
export { AsherahLayer, layerRuntimes, MIN_LAYER_RUNTIME, type AsherahLayerProps } from './asherah-layer';
export { AsherahKeyStore, DYNAMODB_ACTIONS, KMS_ACTIONS, type AsherahKeyStoreProps } from './asherah-key-store';
export { type AsherahEnvironmentOptions } from './environment';
