/**
 * What finalisation stores, and reading it back: the invoice snapshot, the usage-owner
 * records (docs/rating.md), and the replay-safe audit entry of a finalisation.
 */
import { createHash } from 'node:crypto';
import { ObjectId } from 'mongodb';
import { toMicros } from '../../shared/quantity.js';
import type { AuditInput } from '../audit/index.js';
import { overageFromStored } from '../catalog/index.js';
import type { InvoiceDoc, InvoiceView, RatedUsage } from './model.js';
import type { UsageOwnership } from './ownership.js';
import type { UsageOwnerDoc } from './repository.js';

/** The audit entry of a finalisation, with an id derived from the invoice (replay-safe). */
export function finalizedEntry(doc: InvoiceDoc): AuditInput & { id: ObjectId } {
  return {
    id: derivedObjectId(doc.finalizedAt, `invoice.finalized\u0000${doc._id}`),
    at: doc.finalizedAt,
    actor: doc.finalizedBy,
    requestId: doc.requestId,
    action: 'invoice.finalized',
    targetType: 'Invoice',
    targetId: doc._id,
    accountId: doc.accountId,
    before: null,
    after: {
      contractId: doc.contractId,
      periodStart: doc.periodStart,
      periodEnd: doc.periodEnd,
      currency: doc.currency,
      total: doc.total,
      exactTotal: doc.exactTotal,
      amountDue: doc.amountDue,
      lines: doc.lines.map(({ id, kind, feature, quantity, unitPrice, amount }) => ({ id, kind, feature, quantity, unitPrice, amount })),
      usage: doc.usage.map(({ feature, periodStart, used, included, granted, coveredByGrants, overage }) => ({
        feature,
        periodStart,
        used,
        included,
        granted,
        coveredByGrants,
        overage,
      })),
    },
  };
}

/** An ObjectId whose first four bytes are the time, like any other, and the rest a hash of `key`. */
function derivedObjectId(at: Date, key: string): ObjectId {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32BE(Math.floor(at.getTime() / 1000), 0);
  createHash('sha256').update(key).digest().copy(bytes, 4, 0, 8);
  return new ObjectId(bytes);
}

export function fromOwnerDoc(doc: UsageOwnerDoc): UsageOwnership {
  return {
    counterId: doc._id,
    feature: doc.feature,
    periodStart: doc.periodStart,
    periodEnd: doc.periodEnd,
    ownerId: doc.ownerId,
    contributorIds: doc.contributorIds,
    included: doc.included === null ? null : toMicros(doc.included),
    overage: doc.overage ? overageFromStored(doc.overage) : null,
    at: doc.at,
  };
}

/** Stored Int64s come back as bigint (useBigInt64), but be strict at the boundary anyway. */
export function fromStored(doc: InvoiceDoc): InvoiceView {
  const micros = (value: unknown) => toMicros(value);
  return {
    contractId: doc.contractId,
    accountId: doc.accountId,
    periodStart: doc.periodStart,
    periodEnd: doc.periodEnd,
    currency: doc.currency,
    lines: doc.lines,
    usage: doc.usage.map(
      (usage): RatedUsage => ({
        ...usage,
        included: usage.included === null ? null : micros(usage.included),
        granted: micros(usage.granted),
        used: micros(usage.used),
        coveredByIncluded: micros(usage.coveredByIncluded),
        coveredByGrants: micros(usage.coveredByGrants),
        overage: micros(usage.overage),
        grantBurn: usage.grantBurn.map((burn) => ({ ...burn, units: micros(burn.units) })),
        price: usage.price ? overageFromStored(usage.price) : null,
      }),
    ),
    // Snapshots written before exactTotal existed stored the exact sum as `total`.
    total: doc.exactTotal === undefined ? doc.amountDue : doc.total,
    exactTotal: doc.exactTotal ?? doc.total,
    amountDue: doc.amountDue,
    final: true,
    finalizedAt: doc.finalizedAt,
    finalizedBy: doc.finalizedBy,
  };
}
