/**
 * stripe-mock (Stripe's own mock server, a Go binary that .ci/run installs into
 * .tools/bin with `go install github.com/stripe/stripe-mock@<pinned>`), started on a free
 * loopback port, behind a recording proxy: tests read every request's method, path,
 * Idempotency-Key and form body, and may make the proxy lose answers (the request reaches
 * stripe-mock, the client gets a 500), as a crash after Stripe's write would look.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
export const STRIPE_MOCK_VERSION = readFileSync(resolve(ROOT, 'tools/stripe-mock/VERSION'), 'utf8').trim();
const BINARY = resolve(ROOT, '.tools/bin/stripe-mock');

export interface StripeRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  form: URLSearchParams;
  /** The status the client saw. */
  status: number;
}

export interface StripeMock {
  url: string;
  requests: StripeRequest[];
  /** Loses the answers of the next `times` requests whose path and form match. */
  loseAnswers(match: (path: string, form: URLSearchParams) => boolean, times: number): void;
  stop(): Promise<void>;
}

export async function startStripeMock(): Promise<StripeMock> {
  if (!existsSync(BINARY)) {
    throw new Error(`stripe-mock ${STRIPE_MOCK_VERSION} is not installed: run bash tools/stripe-mock/install.sh (.ci/run does)`);
  }
  const child: ChildProcess = spawn(BINARY, ['-http-addr', '127.0.0.1:', '-https-addr', '127.0.0.1:'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const target = await new Promise<string>((resolveUrl, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`stripe-mock did not start: ${output}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /Listening for HTTP at address: (\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolveUrl(`http://${match[1]}`);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`stripe-mock exited with ${code}: ${output}`)));
  });
  const requests: StripeRequest[] = [];
  const faults: Array<{ match: (path: string, form: URLSearchParams) => boolean; remaining: number }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === 'string' && !['host', 'connection', 'content-length'].includes(name)) headers[name] = value;
      }
      const method = req.method ?? 'GET';
      const answer = await fetch(`${target}${req.url}`, { method, headers, ...(method === 'GET' ? {} : { body }) });
      const text = await answer.text();
      const path = (req.url ?? '').split('?')[0]!;
      const form = new URLSearchParams(body.toString('utf8'));
      const fault = faults.find((candidate) => candidate.remaining > 0 && candidate.match(path, form));
      const status = fault ? 500 : answer.status;
      requests.push({ method, path, idempotencyKey: req.headers['idempotency-key'] as string | undefined, form, status });
      if (fault) {
        fault.remaining -= 1;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { type: 'api_error', message: 'injected: the answer was lost' } }));
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(text);
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    loseAnswers: (match, times) => faults.push({ match, remaining: times }),
    stop: async () => {
      await new Promise((closed) => server.close(closed));
      child.kill('SIGTERM');
    },
  };
}
