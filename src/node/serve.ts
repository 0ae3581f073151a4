/**
 * `serve(engine)`: OpenAI's routes over HTTP in Node, so existing OpenAI tools can use a local GPU. The routes
 * are createOpenAIFetch's; this adds what a socket needs: loopback by default (and a Host check against DNS
 * rebinding there), a request size limit, a bound on waiting requests (the engine runs them first come, first
 * served), and a client that disconnects aborts its generation.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { openAIError, type MappedError } from '../openai/errors';
import { createOpenAIFetch, type OpenAIEngine } from '../openai/fetch';

export interface ServeOptions {
  /** Default 8080; 0 picks a free port (see `port` on the result). */
  port?: number;
  /** Default 127.0.0.1 (this machine only). 0.0.0.0 exposes the model to the network, with no authentication. */
  host?: string;
  /** Largest request body accepted; larger ones get 413. Default 4 MiB. */
  maxBodyBytes?: number;
  /** Requests running or waiting for the engine at once; more get 429 with Retry-After. Default 64. */
  maxPendingRequests?: number;
  /** The id /v1/models lists; default the engine's. */
  modelId?: string;
}

export interface OpenAIServer {
  /** The base URL for an OpenAI client: `http://host:port/v1`. */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** Stops accepting connections, aborts running generations and waits for the sockets to close. */
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
const DEFAULT_MAX_PENDING = 64;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** The Host header's name part: `[::1]:8080` → `::1`, `localhost:8080` → `localhost`. */
function hostName(header: string): string {
  const bracketed = /^\[([^\]]+)\]/.exec(header);
  return bracketed ? bracketed[1] : header.replace(/:\d+$/, '');
}

function sendError(res: ServerResponse, { status, body }: MappedError, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** The body, or a 413 once it passes `limit` bytes (declared or as it arrives). */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | MappedError> {
  const tooLarge = openAIError(413, 'invalid_request_error', `The request body exceeds the limit of ${limit} bytes.`, null, 'request_too_large');
  if (Number(req.headers['content-length'] ?? 0) > limit) return tooLarge;
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > limit) return tooLarge;
    parts.push(part);
  }
  return Buffer.concat(parts);
}

export function serve(engine: OpenAIEngine, options: ServeOptions = {}): Promise<OpenAIServer> {
  const { port = 8080, host = '127.0.0.1', maxBodyBytes = DEFAULT_MAX_BODY_BYTES, maxPendingRequests = DEFAULT_MAX_PENDING } = options;
  const handle = createOpenAIFetch(engine, { modelId: options.modelId });
  const running = new Set<AbortController>();
  const checkHost = isLoopback(host);

  async function respond(req: IncomingMessage, res: ServerResponse, controller: AbortController): Promise<void> {
    // A page on another site whose name resolves to 127.0.0.1 must not reach a loopback server.
    if (checkHost && !isLoopback(hostName(req.headers.host ?? ''))) {
      return sendError(res, openAIError(403, 'invalid_request_error', `Host ${req.headers.host} is not this machine.`, null, 'forbidden_host'));
    }
    if (running.size > maxPendingRequests) {
      return sendError(res, openAIError(429, 'rate_limit_error', `${maxPendingRequests} requests are already waiting for the model.`, null, 'queue_full'), { 'retry-after': '1' });
    }
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const body = hasBody ? await readBody(req, maxBodyBytes) : undefined;
    if (body !== undefined && !Buffer.isBuffer(body)) {
      // The rest of an oversized body is not read: the connection closes after the answer.
      res.setHeader('connection', 'close');
      sendError(res, body);
      return new Promise((resolve) => res.end(resolve)).then(() => void req.destroy());
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers.set(name, value);
    const response = await handle(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
      method: req.method,
      headers,
      body: body && body.length > 0 ? new Uint8Array(body) : undefined,
      signal: controller.signal,
    });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (!response.body) return void res.end();
    // Server-sent events go out as they come: no buffering between chunks.
    res.flushHeaders();
    for await (const chunk of Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>)) res.write(chunk);
    res.end();
  }

  const server = createServer((req, res) => {
    const controller = new AbortController();
    running.add(controller);
    // 'close' before the response finished: the client went away, so its generation stops.
    res.on('close', () => {
      running.delete(controller);
      if (!res.writableFinished) controller.abort(new DOMException('The client disconnected', 'AbortError'));
    });
    respond(req, res, controller).catch((e: unknown) => {
      if (controller.signal.aborted) return void res.destroy();
      if (!res.headersSent) sendError(res, openAIError(500, 'server_error', e instanceof Error ? e.message : String(e)));
      else res.destroy();
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
      resolve({
        url: `http://${urlHost}:${bound}/v1`,
        port: bound,
        server,
        close: () =>
          new Promise<void>((done) => {
            for (const controller of running) controller.abort(new DOMException('The server is closing', 'AbortError'));
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
