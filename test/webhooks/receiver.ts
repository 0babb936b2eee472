/**
 * A webhook receiver for tests: a real HTTP server that verifies every delivery with the
 * `standardwebhooks` library (the reference implementation, not ours) and can be told to
 * fail its first answers.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  id: string;
  type: string;
  data: Record<string, any>;
}

export class Receiver {
  readonly received: Received[] = [];
  /** Deliveries whose signature did not verify. */
  readonly unverified: string[] = [];
  requests = 0;
  private server: Server | undefined;
  /** Each endpoint's secret, by the path its URL points at. */
  private readonly verifiers = new Map<string, Webhook>();

  constructor(private failFirst = 0) {}

  trust(url: string, secret: string): void {
    this.verifiers.set(new URL(url).pathname, new Webhook(secret));
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.requests += 1;
        if (this.failFirst > 0) {
          this.failFirst -= 1;
          res.writeHead(500).end('not now');
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        try {
          const verifier = this.verifiers.get(req.url ?? '');
          if (!verifier) throw new Error(`no endpoint at ${req.url}`);
          const payload = verifier.verify(body, req.headers as Record<string, string>) as Omit<Received, 'id'>;
          this.received.push({ id: String(req.headers['webhook-id']), type: payload.type, data: payload.data });
          res.writeHead(204).end();
        } catch (error) {
          this.unverified.push(String(error));
          res.writeHead(400).end('bad signature');
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Deliveries after deduplication by webhook-id (what a receiver following the spec keeps). */
  distinct(): Map<string, Received> {
    return new Map(this.received.map((delivery) => [delivery.id, delivery]));
  }

  async waitFor(count: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.distinct().size < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.distinct().size} of ${count} webhooks arrived`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
