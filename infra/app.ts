/**
 * The CDK app (cdk.json: `npx tsx infra/app.ts`). It builds the layer zip first, on every synth: the build is
 * deterministic, so an unchanged layer keeps its asset hash and no new layer version is published, and a changed
 * layer/src is never deployed with a stale zip. The stack and its cdk-nag checks are in asherah-app.ts.
 */
import { App } from 'aws-cdk-lib';
import { buildLayer } from '../layer/build';
import { addStarterStack } from './asherah-app';

const app = new App();
addStarterStack(app, buildLayer().zipPath);
