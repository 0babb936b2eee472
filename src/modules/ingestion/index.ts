/**
 * The ingestion module: usage from other pipes into the usage engine. Today Segment
 * (`POST /ingest/segment`, R23, docs/segment.md); a Kafka consumer would sit here too
 * (docs/kafka.md). The route in src/server/segment.ts authenticates and calls `ingest`.
 */
export { SegmentIngestion, type SegmentOutcome } from './segment.js';
