/**
 * `POST /ingest/segment` (R23): what `@segment/analytics-node` sends to a custom `host`
 * (set `path: '/ingest/segment'`). The write key is a JWT carrying `usage:write`, sent as
 * Segment sends it: HTTP Basic with the key as the user name. Authentication comes before
 * the body is read, and the body has the GraphQL path's limit. Answers 200 with counts,
 * 400 naming the field, 401, 403 or 413. Unmapped events are counted in
 * `allotment_segment_events_total{outcome="unmapped"}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GraphQLError } from 'graphql';
import type { SegmentIngestion } from '../modules/ingestion/index.js';
import { UnauthenticatedError } from '../shared/errors.js';
import type { Authenticator } from './auth.js';
import type { Metrics } from './metrics.js';

export interface SegmentRouteDeps {
  authenticator: Authenticator;
  ingestion: SegmentIngestion;
  maxBodyBytes: number;
  metrics: Metrics;
  readBody: (req: IncomingMessage, maxBytes: number) => Promise<string | null>;
}

/** `Basic base64(writeKey:)` → `Bearer writeKey`; a Bearer header passes as is. */
export function writeKeyAuthorization(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const basic = /^Basic\s+(\S+)$/i.exec(header);
  if (!basic) return header;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const user = decoded.includes(':') ? decoded.slice(0, decoded.indexOf(':')) : decoded;
  return user ? `Bearer ${user}` : undefined;
}

export async function serveSegment(req: IncomingMessage, res: ServerResponse, deps: SegmentRouteDeps): Promise<void> {
  const send = (status: number, payload: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(payload));
  };
  if (req.method !== 'POST') return send(405, { error: 'Use POST.' });
  let principal: Awaited<ReturnType<Authenticator['authenticate']>>;
  try {
    principal = await deps.authenticator.authenticate(writeKeyAuthorization(req.headers.authorization));
    if (deps.authenticator.mode !== 'open' && !principal.authenticated) throw new UnauthenticatedError();
  } catch (error) {
    if (!(error instanceof UnauthenticatedError)) throw error;
    res.setHeader('connection', 'close');
    return send(401, { error: 'Send the write key (a JWT with usage:write) as HTTP Basic, as Segment does.' });
  }
  const raw = await deps.readBody(req, deps.maxBodyBytes);
  if (raw === null) {
    res.setHeader('connection', 'close');
    return send(413, { error: `Request body exceeds ${deps.maxBodyBytes} bytes.`, field: 'body' });
  }
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return send(400, { error: 'Request body is not valid JSON.', field: 'body' });
  }
  try {
    const outcome = await deps.ingestion.ingest(body, principal);
    const counter = deps.metrics.segmentEvents;
    counter.inc({ outcome: 'accepted' }, outcome.accepted);
    counter.inc({ outcome: 'duplicate' }, outcome.duplicates);
    counter.inc({ outcome: 'rejected' }, outcome.rejected);
    counter.inc({ outcome: 'unmapped' }, outcome.unmapped);
    counter.inc({ outcome: 'ignored' }, outcome.ignored);
    send(200, { success: true, ...outcome });
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    const code = error.extensions.code;
    const status = code === 'BAD_USER_INPUT' ? 400 : code === 'FORBIDDEN' ? 403 : code === 'UNAUTHENTICATED' ? 401 : 0;
    if (status === 0) throw error;
    send(status, { error: error.message, code, ...(error.extensions.field ? { field: error.extensions.field } : {}) });
  }
}
