import { createHash } from 'node:crypto';
import { ObjectId } from 'mongodb';

/** A deterministic audit id (seconds first, like any ObjectId), so a replayed write collides. */
export function replayableId(at: Date, ...parts: string[]): ObjectId {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32BE(Math.floor(at.getTime() / 1000), 0);
  createHash('sha256').update(parts.join('\u0000')).digest().copy(bytes, 4, 0, 8);
  return new ObjectId(bytes);
}
