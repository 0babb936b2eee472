/**
 * An example product service: a report generator that sells reports by the unit. Each
 * `POST /accounts/<id>/reports` asks Allotment first, builds the report only when allowed,
 * and records one `reports` unit exactly once, through the typed client (src/client).
 * A client's `idempotency-key` header makes a retried request count once as well.
 *
 *   ALLOTMENT_URL=http://127.0.0.1:4000/graphql ALLOTMENT_TOKEN=… npx tsx examples/usage-service/service.ts
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type AllotmentClient, AllotmentError, createAllotmentClient, EntitlementDeniedError } from '../../src/client/index.js';

export const FEATURE = 'reports';

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(allotment: AllotmentClient, req: IncomingMessage, res: ServerResponse, reportsBuilt: { count: number }) {
  const match = /^\/accounts\/([\w-]+)\/reports$/.exec(req.url ?? '');
  if (req.method !== 'POST' || !match) return send(res, 404, { error: 'not found' });
  const accountId = match[1]!;
  const key = req.headers['idempotency-key'];
  try {
    const { result, decision, receipt } = await allotment.guard(
      accountId,
      FEATURE,
      '1',
      () => {
        reportsBuilt.count += 1;
        return { title: `Usage report for ${accountId}`, builtAt: new Date().toISOString() };
      },
      typeof key === 'string' ? { idempotencyKey: `report-${accountId}-${key}` } : {},
    );
    send(res, 201, { report: result, usedBefore: decision.used, recorded: receipt.status });
  } catch (error) {
    if (error instanceof EntitlementDeniedError) return send(res, 402, { error: 'limit reached', reason: error.decision.reason });
    if (error instanceof AllotmentError && error.retryable) return send(res, 503, { error: 'entitlements unavailable, retry later' });
    send(res, 500, { error: (error as Error).message });
  }
}

export async function startReportService(options: {
  allotmentUrl: string;
  token: string | (() => string | Promise<string>);
  port?: number;
}) {
  const allotment = createAllotmentClient({ url: options.allotmentUrl, token: options.token, retry: { attempts: 4, baseDelayMs: 50 } });
  const reportsBuilt = { count: 0 };
  const server = createServer((req, res) => void handle(allotment, req, res, reportsBuilt));
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    reportsBuilt,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const service = await startReportService({
    allotmentUrl: process.env.ALLOTMENT_URL ?? 'http://127.0.0.1:4000/graphql',
    token: process.env.ALLOTMENT_TOKEN ?? '',
    port: Number(process.env.PORT ?? 4100),
  });
  console.log(`report service on ${service.url} (POST /accounts/<id>/reports)`);
}
