/**
 * A small AWS KMS stand-in for `npm run start:aws-local` and the tests: speaks the KMS wire protocol (AWS JSON 1.1 over HTTP,
 * `X-Amz-Target: TrentService.<Operation>`) on 127.0.0.1 with an ephemeral port, so that the real AWS SDK (ours,
 * and the Rust SDK inside the oracle) talks to it exactly as to KMS. It implements the three operations Asherah
 * uses (docs/wire-format.md §4.3): GenerateDataKey, Encrypt, Decrypt, with real AES-256-GCM under a 32-byte master
 * key per key ARN that it holds in memory.
 *
 * One instance usually stands for one region, but it may hold the keys of several: a single AWS_ENDPOINT_URL sends
 * every region of the Rust oracle to one endpoint, and the key is found from the ARN (in KeyId, or inside the
 * CiphertextBlob on Decrypt), as real KMS finds it.
 *
 * Faults, per instance: `down()` (every connection is closed at once, open keep-alive sockets too), `throttle(n)`
 * (the next n requests get ThrottlingException), `failNext(n, type, operation?)` (any AWS error), `slow(ms)`
 * (every response waits; set it past the client's requestTimeout), `clear()`. Requests that reach the handler are
 * counted per operation, faulted ones included; connections dropped while down are counted apart.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type KmsOperation = 'GenerateDataKey' | 'Encrypt' | 'Decrypt';

export type KmsErrorType =
  | 'NotFoundException'
  | 'InvalidCiphertextException'
  | 'IncorrectKeyException'
  | 'ThrottlingException'
  | 'KMSInternalException'
  | 'AccessDeniedException'
  | 'DisabledException'
  | 'ValidationException'
  | 'UnknownOperationException'
  | 'SerializationException';

/** HTTP status of each error, as KMS sends them. */
const STATUS: Record<KmsErrorType, number> = {
  NotFoundException: 400,
  InvalidCiphertextException: 400,
  IncorrectKeyException: 400,
  ThrottlingException: 400,
  KMSInternalException: 500,
  AccessDeniedException: 400,
  DisabledException: 400,
  ValidationException: 400,
  UnknownOperationException: 400,
  SerializationException: 400,
};

const OPERATIONS: readonly KmsOperation[] = ['GenerateDataKey', 'Encrypt', 'Decrypt'];
const TARGET_PREFIX = 'TrentService.';
const CONTENT_TYPE = 'application/x-amz-json-1.1';

/** A key ARN of the test account: `arn:aws:kms:<region>:123456789012:key/<keyId>`. */
export function keyArn(region: string, keyId = `mrk-test-${region}`, account = '123456789012'): string {
  return `arn:aws:kms:${region}:${account}:key/${keyId}`;
}

interface MasterKey {
  arn: string;
  key: Buffer;
  /** KMS returns a KeyMaterialId (64 hex) on GenerateDataKey and Decrypt. */
  materialId: string;
}

interface Fault {
  remaining: number;
  type: KmsErrorType;
  operation?: KmsOperation;
}

class KmsFault extends Error {
  constructor(
    readonly type: KmsErrorType,
    message: string,
  ) {
    super(message);
  }
}

// CiphertextBlob layout (opaque to clients, as real KMS blobs are): magic "TKMS" | u16 ARN length | ARN (UTF-8) |
// nonce (12) | tag (16) | ciphertext. The ARN is also the GCM AAD, so a blob cannot be re-labelled to another key.
const MAGIC = Buffer.from('TKMS', 'latin1');

export interface KmsServerOptions {
  /** Key ARNs this instance holds, each with a fresh random master key. */
  keys: readonly string[];
  /** For error messages and debugging only. */
  label?: string;
}

export class KmsServer {
  /** Requests per operation that reached the handler, faulted ones included. */
  readonly requests: Record<KmsOperation, number> = { GenerateDataKey: 0, Encrypt: 0, Decrypt: 0 };
  /** Connections closed because the server was down. */
  droppedConnections = 0;
  readonly label: string;

  private readonly keys = new Map<string, MasterKey>();
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private faults: Fault[] = [];
  private isDown = false;
  private delayMs = 0;

  private constructor(
    private readonly server: Server,
    options: KmsServerOptions,
  ) {
    this.label = options.label ?? options.keys.join(',');
    for (const arn of options.keys) this.addKey(arn);
  }

  /** Starts a server on 127.0.0.1, on a port the OS picks. */
  static async start(options: KmsServerOptions): Promise<KmsServer> {
    const server = createServer();
    const kms = new KmsServer(server, options);
    server.on('connection', (socket) => kms.onConnection(socket));
    server.on('request', (req, res) => kms.onRequest(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return kms;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** What clients put in `endpoint` (or AWS_ENDPOINT_URL). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get totalRequests(): number {
    return this.requests.GenerateDataKey + this.requests.Encrypt + this.requests.Decrypt;
  }

  get keyArns(): string[] {
    return [...this.keys.keys()];
  }

  /** Adds a key ARN with a fresh random master key (no-op if held already). */
  addKey(arn: string): void {
    if (this.keys.has(arn)) return;
    this.keys.set(arn, { arn, key: randomBytes(32), materialId: randomBytes(32).toString('hex') });
  }

  /** Closes every connection, open ones too, until clear(). */
  down(): void {
    this.isDown = true;
    for (const socket of this.sockets) socket.destroy();
  }

  /** The next `n` requests get ThrottlingException (HTTP 400), which the SDK retries. */
  throttle(n: number): void {
    this.failNext(n, 'ThrottlingException');
  }

  /** The next `n` requests (of `operation`, if given) get the AWS error `type`. Infinity for "until clear()". */
  failNext(n: number, type: KmsErrorType, operation?: KmsOperation): void {
    this.faults.push({ remaining: n, type, operation });
  }

  /** Every response waits `ms` first (until clear()). */
  slow(ms: number): void {
    this.delayMs = ms;
  }

  /** Ends every fault; counters are kept (see resetCounts). */
  clear(): void {
    this.isDown = false;
    this.faults = [];
    this.delayMs = 0;
  }

  resetCounts(): void {
    for (const op of OPERATIONS) this.requests[op] = 0;
    this.droppedConnections = 0;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- transport ------------------------------------------------------------------------------------------------

  private onConnection(socket: Socket): void {
    if (this.isDown) {
      this.droppedConnections++;
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      this.handle(req, Buffer.concat(chunks))
        .then((reply) => this.respond(res, reply))
        .catch((err: unknown) => {
          const fault = err instanceof KmsFault ? err : new KmsFault('KMSInternalException', String(err));
          this.respond(res, { status: STATUS[fault.type], body: { __type: fault.type, message: fault.message } });
        });
    });
  }

  private respond(res: ServerResponse, reply: { status: number; body: object }): void {
    if (res.destroyed || res.socket === null || res.socket.destroyed) return; // the client gave up (timeout)
    const body = Buffer.from(JSON.stringify(reply.body), 'utf8');
    res.writeHead(reply.status, {
      'content-type': CONTENT_TYPE,
      'content-length': String(body.length),
      'x-amzn-requestid': randomUUID(),
    });
    res.end(body);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  // ---- protocol -------------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, raw: Buffer): Promise<{ status: number; body: object }> {
    if (this.isDown) {
      // A request on a connection accepted just before down(): drop it as well.
      req.socket.destroy();
      throw new KmsFault('KMSInternalException', 'down');
    }
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '';
    if (!isOperation(operation)) throw new KmsFault('UnknownOperationException', `unsupported operation ${target}`);
    this.requests[operation]++;
    if (this.delayMs > 0) await this.delay(this.delayMs);
    const fault = this.takeFault(operation);
    if (fault !== undefined) throw new KmsFault(fault, `injected ${fault} (${this.label})`);
    if (!String(req.headers['content-type'] ?? '').startsWith(CONTENT_TYPE)) {
      throw new KmsFault('SerializationException', `Content-Type must be ${CONTENT_TYPE}`);
    }
    if (req.headers.authorization === undefined) {
      throw new KmsFault('AccessDeniedException', 'the request is not signed (no Authorization header)');
    }
    let input: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw.toString('utf8') || '{}');
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      input = parsed as Record<string, unknown>;
    } catch {
      throw new KmsFault('SerializationException', 'the request body is not a JSON object');
    }
    switch (operation) {
      case 'GenerateDataKey':
        return { status: 200, body: this.generateDataKey(input) };
      case 'Encrypt':
        return { status: 200, body: this.encrypt(input) };
      case 'Decrypt':
        return { status: 200, body: this.decrypt(input) };
    }
  }

  private takeFault(operation: KmsOperation): KmsErrorType | undefined {
    for (const fault of this.faults) {
      if (fault.remaining <= 0 || (fault.operation !== undefined && fault.operation !== operation)) continue;
      fault.remaining--;
      return fault.type;
    }
    return undefined;
  }

  private generateDataKey(input: Record<string, unknown>): object {
    const key = this.resolveKey(input.KeyId);
    let size: number;
    if (input.KeySpec === 'AES_256') size = 32;
    else if (input.KeySpec === 'AES_128') size = 16;
    else if (input.KeySpec === undefined && Number.isInteger(input.NumberOfBytes)) size = input.NumberOfBytes as number;
    else throw new KmsFault('ValidationException', 'KeySpec must be AES_256 or AES_128, or NumberOfBytes given');
    if (size < 1 || size > 1024) throw new KmsFault('ValidationException', 'NumberOfBytes must be 1 to 1024');
    const plaintext = randomBytes(size);
    return {
      CiphertextBlob: seal(key, plaintext).toString('base64'),
      Plaintext: plaintext.toString('base64'),
      KeyId: key.arn,
      KeyMaterialId: key.materialId,
    };
  }

  private encrypt(input: Record<string, unknown>): object {
    const key = this.resolveKey(input.KeyId);
    const plaintext = blobField(input.Plaintext, 'Plaintext');
    if (plaintext.length < 1 || plaintext.length > 4096) {
      throw new KmsFault('ValidationException', 'Plaintext must be 1 to 4096 bytes');
    }
    return { CiphertextBlob: seal(key, plaintext).toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  }

  private decrypt(input: Record<string, unknown>): object {
    const blob = blobField(input.CiphertextBlob, 'CiphertextBlob');
    const parsed = parseBlob(blob);
    if (parsed === undefined) throw new KmsFault('InvalidCiphertextException', 'the ciphertext is not a KMS ciphertext');
    if (input.KeyId !== undefined) {
      // KeyId on Decrypt must name the key the ciphertext was made under (IncorrectKeyException otherwise).
      const named = this.resolveKey(input.KeyId);
      if (named.arn !== parsed.arn) {
        throw new KmsFault('IncorrectKeyException', 'the key ID in the request does not identify the key that encrypted the ciphertext');
      }
    }
    const key = this.keys.get(parsed.arn);
    if (key === undefined) throw new KmsFault('NotFoundException', `Key '${parsed.arn}' does not exist`);
    const plaintext = open(key, parsed);
    if (plaintext === undefined) throw new KmsFault('InvalidCiphertextException', 'the ciphertext failed authentication');
    return {
      KeyId: key.arn,
      Plaintext: plaintext.toString('base64'),
      EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      KeyMaterialId: key.materialId,
    };
  }

  /** A full key ARN or a bare key id (what follows `key/`), as KMS accepts both. Aliases are not supported. */
  private resolveKey(keyId: unknown): MasterKey {
    if (typeof keyId !== 'string' || keyId === '') throw new KmsFault('ValidationException', 'KeyId is required');
    const exact = this.keys.get(keyId);
    if (exact !== undefined) return exact;
    if (!keyId.includes(':')) {
      for (const key of this.keys.values()) if (key.arn.endsWith(`:key/${keyId}`)) return key;
    }
    throw new KmsFault('NotFoundException', `Key '${keyId}' does not exist`);
  }
}

function isOperation(name: string): name is KmsOperation {
  return (OPERATIONS as readonly string[]).includes(name);
}

function blobField(value: unknown, name: string): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    throw new KmsFault('SerializationException', `${name} must be a base64 string`);
  }
  return Buffer.from(value, 'base64');
}

function seal(key: MasterKey, plaintext: Buffer): Buffer {
  const arn = Buffer.from(key.arn, 'utf8');
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, nonce, { authTagLength: 16 });
  cipher.setAAD(arn);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(arn.length);
  return Buffer.concat([MAGIC, length, arn, nonce, cipher.getAuthTag(), ciphertext]);
}

interface ParsedBlob {
  arn: string;
  aad: Buffer;
  nonce: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

function parseBlob(blob: Buffer): ParsedBlob | undefined {
  if (blob.length < MAGIC.length + 2 || !blob.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const arnLength = blob.readUInt16BE(MAGIC.length);
  const arnStart = MAGIC.length + 2;
  const nonceStart = arnStart + arnLength;
  const tagStart = nonceStart + 12;
  const ciphertextStart = tagStart + 16;
  if (blob.length < ciphertextStart) return undefined;
  const aad = blob.subarray(arnStart, nonceStart);
  return {
    arn: aad.toString('utf8'),
    aad,
    nonce: blob.subarray(nonceStart, tagStart),
    tag: blob.subarray(tagStart, ciphertextStart),
    ciphertext: blob.subarray(ciphertextStart),
  };
}

function open(key: MasterKey, blob: ParsedBlob): Buffer | undefined {
  const decipher = createDecipheriv('aes-256-gcm', key.key, blob.nonce, { authTagLength: 16 });
  decipher.setAAD(blob.aad);
  decipher.setAuthTag(blob.tag);
  try {
    return Buffer.concat([decipher.update(blob.ciphertext), decipher.final()]);
  } catch {
    return undefined;
  }
}
