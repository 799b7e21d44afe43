/**
 * The asherah-layer Lambda layer: the SDK, built into a zip by layer/build.ts (`npm run build:layer` writes
 * dist/asherah-layer.zip), for both architectures and every Node.js runtime from nodejs22.x on.
 */
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';

/** The oldest runtime the layer is built and tested for (esbuild target node22). */
export const MIN_LAYER_RUNTIME = lambda.Runtime.NODEJS_22_X;

export interface AsherahLayerProps {
  /** The zip layer/build.ts writes (dist/asherah-layer.zip). */
  readonly zipPath: string;
}

export class AsherahLayer extends lambda.LayerVersion {
  constructor(scope: Construct, id: string, props: AsherahLayerProps) {
    super(scope, id, {
      code: lambda.Code.fromAsset(props.zipPath),
      // The zip carries koffi's native binaries for both.
      compatibleArchitectures: [lambda.Architecture.X86_64, lambda.Architecture.ARM_64],
      compatibleRuntimes: layerRuntimes(),
      description: 'asherah-layer: Asherah-compatible envelope encryption with keys in locked memory (koffi for x86_64 and arm64)',
      license: 'Apache-2.0 (koffi: MIT)',
    });
  }

  /**
   * Adds the layer to `fn`. The function must then `require('asherah-layer')` from CommonJS and leave
   * asherah-layer (and @aws-sdk/*, which the runtime provides) out of its bundle.
   */
  attachTo(fn: lambda.Function): void {
    fn.addLayers(this);
  }
}

/** nodejs22.x and every later Node.js runtime this aws-cdk-lib knows (nodejs24.x in 2.276). */
export function layerRuntimes(): lambda.Runtime[] {
  const major = (r: lambda.Runtime) => Number(/^nodejs(\d+)\.x$/.exec(r.name)?.[1] ?? 0);
  const seen = new Set<string>();
  return lambda.Runtime.ALL
    .filter((r) => r.family === lambda.RuntimeFamily.NODEJS && !r.isVariable && major(r) >= major(MIN_LAYER_RUNTIME))
    .filter((r) => !seen.has(r.name) && seen.add(r.name))
    .sort((a, b) => major(a) - major(b));
}
