/**
 * A small Lambda Runtime API server (the HTTP interface a Lambda runtime polls: /2018-06-01/runtime/…), so tests
 * can run built artifacts the way Lambda does: a runtime process asks for the next event, invokes the handler,
 * posts the response or the error. It records when the runtime first asked for an event, i.e. when INIT ended.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface InvocationResult {
  requestId: string;
  ok: boolean;
  /** The handler's response, or Lambda's error object {errorType, errorMessage, …}. */
  body: unknown;
}

interface Pending {
  requestId: string;
  event: unknown;
  resolve: (result: InvocationResult) => void;
}

export class LambdaRuntimeApi {
  /** When the runtime first called /invocation/next (INIT complete), as Date.now(). */
  initDoneAt: number | undefined;
  initError: unknown;
  private readonly queue: Pending[] = [];
  private readonly waiting: http.ServerResponse[] = [];
  private readonly inFlight = new Map<string, Pending>();

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<LambdaRuntimeApi> {
    const server = http.createServer();
    const api = new LambdaRuntimeApi(server);
    server.on('request', (req, res) => api.route(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return api;
  }

  /** host:port, the value of AWS_LAMBDA_RUNTIME_API. */
  get address(): string {
    const { port } = this.server.address() as AddressInfo;
    return `127.0.0.1:${port}`;
  }

  invoke(event: unknown): Promise<InvocationResult> {
    return new Promise((resolve) => {
      this.queue.push({ requestId: randomUUID(), event, resolve });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    for (const res of this.waiting.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '';
    if (req.method === 'GET' && url === '/2018-06-01/runtime/invocation/next') {
      this.initDoneAt ??= Date.now();
      this.waiting.push(res);
      this.dispatch();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body = text === '' ? undefined : JSON.parse(text);
      const match = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
      if (req.method === 'POST' && match) {
        const pending = this.inFlight.get(match[1]);
        if (pending === undefined) return reply(res, 400, { errorMessage: 'unknown request id' });
        this.inFlight.delete(match[1]);
        pending.resolve({ requestId: pending.requestId, ok: match[2] === 'response', body });
        return reply(res, 202, { status: 'OK' });
      }
      if (req.method === 'POST' && url === '/2018-06-01/runtime/init/error') {
        this.initError = body;
        return reply(res, 202, { status: 'OK' });
      }
      reply(res, 404, { errorMessage: `no route ${req.method} ${url}` });
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.waiting.length > 0) {
      const pending = this.queue.shift()!;
      const res = this.waiting.shift()!;
      this.inFlight.set(pending.requestId, pending);
      const body = JSON.stringify(pending.event);
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Lambda-Runtime-Aws-Request-Id': pending.requestId,
        'Lambda-Runtime-Deadline-Ms': String(Date.now() + 30_000),
        'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-west-2:111122223333:function:asherah-starter',
        'Lambda-Runtime-Trace-Id': 'Root=1-00000000-000000000000000000000000',
      });
      res.end(body);
    }
  }
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}
