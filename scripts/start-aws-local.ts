/**
 * npm run start:aws-local: the same walkthrough as `npm start`, but on the AWS code paths, with no AWS account:
 * the DynamoDB metastore against dynalite (a DynamoDB-protocol server) and AWS KMS against the KMS-protocol
 * server the tests use, both on loopback ports, both gone when it ends.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { DUMMY_CREDENTIALS_ENV, startDynalite, TEST_REGION } from './local-aws/dynalite.js';
import { keyArn, KmsServer } from './local-aws/kms-server.js';

async function main(): Promise<void> {
  const dynamo = await startDynalite({ separateProcess: true });
  const arn = keyArn(TEST_REGION);
  const kms = await KmsServer.start({ keys: [arn], label: TEST_REGION });
  try {
    const env = {
      ...process.env,
      ...DUMMY_CREDENTIALS_ENV,
      AWS_REGION: TEST_REGION,
      ASHERAH_METASTORE: 'dynamodb',
      ASHERAH_DYNAMODB_ENDPOINT: dynamo.endpoint,
      ASHERAH_KMS: 'aws',
      ASHERAH_KMS_KEY_ARN: arn,
      ASHERAH_KMS_ENDPOINT: kms.endpoint,
      ASHERAH_PREWARM_PARTITIONS: 'partition-1',
    };
    console.log(`dynalite at ${dynamo.endpoint}, KMS-protocol server at ${kms.endpoint} (key ${arn})\n`);
    // The demo runs in a child process: the KMS server must keep answering while it runs.
    const demo = await runAsync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'demo.ts')], env);
    console.log(`\nKMS requests served: ${JSON.stringify(kms.requests)}`);
    process.exitCode = demo;
  } finally {
    await kms.close();
    await dynamo.close();
  }
}

function runAsync(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: 'inherit' });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

void main();
