// A stand-in for the managed Node.js runtime's bootstrap, enough to run built artifacts as Lambda does: it loads
// the handler module named by _HANDLER from LAMBDA_TASK_ROOT (an ES module is imported, so its top-level await
// holds INIT), then polls the Runtime API at AWS_LAMBDA_RUNTIME_API for events, and posts responses or errors.
// NODE_PATH is set by whoever starts this process, as Lambda sets it.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
const [moduleName, functionName] = process.env._HANDLER.split('.');
const root = process.env.LAMBDA_TASK_ROOT;

async function load() {
  for (const ext of ['.js', '.mjs', '.cjs']) {
    const file = path.join(root, moduleName + ext);
    if (!existsSync(file)) continue;
    const mod = ext === '.cjs' ? createRequire(file)(file) : await import(pathToFileURL(file).href);
    const fn = mod[functionName] ?? mod.default?.[functionName];
    if (typeof fn !== 'function') throw new Error(`${moduleName}.${functionName} is not a function`);
    return fn;
  }
  throw new Error(`Cannot find module '${moduleName}' in ${root}`);
}

const errorBody = (err) => JSON.stringify({ errorType: err?.name ?? 'Error', errorMessage: err?.message ?? String(err) });

let handler;
try {
  handler = await load();
} catch (err) {
  await fetch(`${api}/init/error`, { method: 'POST', body: errorBody(err) });
  process.exit(1);
}

for (;;) {
  let res;
  try {
    res = await fetch(`${api}/invocation/next`);
  } catch {
    process.exit(0); // the Runtime API went away: the test is over
  }
  const requestId = res.headers.get('lambda-runtime-aws-request-id');
  const event = await res.json();
  const context = {
    awsRequestId: requestId,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    invokedFunctionArn: res.headers.get('lambda-runtime-invoked-function-arn'),
    getRemainingTimeInMillis: () => Number(res.headers.get('lambda-runtime-deadline-ms')) - Date.now(),
  };
  try {
    const result = await handler(event, context);
    await fetch(`${api}/invocation/${requestId}/response`, { method: 'POST', body: JSON.stringify(result) });
  } catch (err) {
    await fetch(`${api}/invocation/${requestId}/error`, { method: 'POST', body: errorBody(err) });
  }
}
