import type { ObjectId } from 'mongodb';

/** An immutable audit entry (R10). There is no code path that updates or deletes one. */
export interface AuditDoc {
  _id: ObjectId;
  at: Date;
  actor: string;
  action: string;
  targetType: string;
  targetId: string;
  accountId: string | null;
  before: unknown;
  after: unknown;
  requestId: string | null;
}

export type AuditInput = Omit<AuditDoc, '_id' | 'at' | 'before' | 'after' | 'accountId' | 'requestId'> & {
  /** A deterministic id, for entries written by a step that crash recovery may replay. */
  id?: ObjectId;
  at?: Date;
  accountId?: string | null;
  before?: unknown;
  after?: unknown;
  requestId?: string | null;
};

/** Who is acting, for the audit trail: the token's subject and the request. */
export interface Actor {
  actor: string;
  requestId: string | null;
}
