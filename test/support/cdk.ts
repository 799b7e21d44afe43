/**
 * What the infra tests share: an App configured as `cdk synth` configures it (cdk.json's feature flags), minus
 * CDK's built-in CloudFormation validation (seconds per synth; `cdk synth` still runs it), and the layer zip.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { ASSET_RESOURCE_METADATA_ENABLED_CONTEXT, PATH_METADATA_ENABLE_CONTEXT } from 'aws-cdk-lib/cx-api';
import { buildLayer, DEFAULT_LAYER_ZIP } from '../../layer/build';

const ROOT = path.resolve(__dirname, '..', '..');

export function testApp(context: Record<string, unknown> = {}): App {
  const cdkJson = JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return new App({
    builtinCloudFormationValidation: false,
    // As the CLI sets them: resources name their assets (aws:asset:path) and construct paths.
    context: { ...cdkJson.context, [ASSET_RESOURCE_METADATA_ENABLED_CONTEXT]: true, [PATH_METADATA_ENABLE_CONTEXT]: true, ...context },
  });
}

/** Context that skips NodejsFunction's esbuild run, for tests about the template only. */
export const SKIP_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

// Built once per test process, so a test never sees a zip older than layer/src. The build is deterministic and
// replaces the file atomically, so test processes that build it side by side leave the same bytes.
let built: string | undefined;

/** dist/asherah-layer.zip, freshly built from the current sources (once per test process). */
export function layerZip(): string {
  built ??= buildLayer({ outFile: DEFAULT_LAYER_ZIP }).zipPath;
  return built;
}
