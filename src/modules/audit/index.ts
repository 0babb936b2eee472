/**
 * The audit module (R10): the immutable trail every mutation writes (actor, action,
 * target, before/after, request id), and its `auditLog` query.
 */
export { AuditLog, auditIndexes } from './repository.js';
export type { Actor, AuditDoc, AuditInput } from './model.js';
