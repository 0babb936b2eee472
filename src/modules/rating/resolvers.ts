import type { Resolvers } from '../../generated/graphql.js';
import { authorize } from '../../shared/scopes.js';
import { ForbiddenError, NotFoundError } from '../../shared/errors.js';
import { Money } from '../../shared/money.js';
import { toMicros, formatQuantity, type Micros } from '../../shared/quantity.js';
import { formatAmount } from './currency.js';
import { toBillingExport } from './export.js';
import type { InvoiceView, PendingCorrection } from './model.js';
import type { RatingService } from './service.js';

const fmt = (micros: Micros | null): string | null => (micros === null ? null : formatQuantity(micros));

/**
 * Thin: authorize, hand over to RatingService, format micro-units as decimals. Contract
 * fields were authorized where the Contract entered the graph (entitlements:read + its
 * account), so customers see their own invoice previews.
 */
export const ratingResolvers: Resolvers = {
  Contract: {
    invoicePreview: (contract, { periodStart }, { services, loaders }) => services.rating.preview(contract, periodStart, loaders),
  },
  Query: {
    async billingExport(_root, { contractId, periodStart }, { principal, services, loaders }) {
      authorize(principal, 'audit:read');
      if (principal.accountId !== undefined)
        throw new ForbiddenError('The billing export is for billing systems; customer tokens cannot use it.');
      const contract = await loaders.contractById.load(contractId);
      if (!contract) throw new NotFoundError(`Contract "${contractId}" does not exist; create it with upsertContract.`);
      return toBillingExport(await services.rating.preview(contract, periodStart, loaders));
    },
  },
  Mutation: {
    finalizeInvoice(_root, { contractId, periodStart }, { principal, requestId, services }) {
      authorize(principal, 'contracts:write');
      return services.rating.finalize(contractId, periodStart, { actor: principal.actor, requestId });
    },
  },
  InvoicePreview: {
    usage: (invoice) => invoice.usage,
    pendingCorrections: (invoice, _args, { services }) => correctionsOf(services.rating, invoice),
    async correctionTotal(invoice, _args, { services }) {
      return correctionTotal(invoice, await correctionsOf(services.rating, invoice));
    },
  },
  InvoiceLine: {
    members: (line) => (line.members ?? []).map(({ accountId, quantity }) => ({ accountId, quantity: formatQuantity(toMicros(quantity)) })),
    tiers: (line) => line.tiers ?? [],
  },
  InvoiceUsage: {
    members: (usage) =>
      (usage.members ?? []).map(({ accountId, quantity }) => ({ accountId, quantity: formatQuantity(toMicros(quantity)) })),
    included: (usage) => fmt(usage.included),
    granted: (usage) => formatQuantity(usage.granted),
    used: (usage) => formatQuantity(usage.used),
    coveredByIncluded: (usage) => formatQuantity(usage.coveredByIncluded),
    coveredByGrants: (usage) => formatQuantity(usage.coveredByGrants),
    overage: (usage) => formatQuantity(usage.overage),
    unitPrice: (usage) => (usage.price && !usage.price.tiers ? usage.price.unitPrice : null),
    model: (usage) => (usage.price ? (usage.price.model ?? 'PER_UNIT') : null),
    tiers: (usage) => usage.price?.tiers ?? null,
    per: (usage) => (usage.price ? formatQuantity(usage.price.per) : null),
    rounding: (usage) => usage.price?.rounding ?? null,
    grants: (usage) => usage.grantBurn,
  },
  InvoiceGrantBurn: {
    kind: (burn) => (burn.kind === 'PREPAID' || burn.kind === 'PROMOTIONAL' ? burn.kind : null),
    units: (burn) => formatQuantity(burn.units),
  },
  PendingCorrection: {
    usedAtFinalization: (correction) => formatQuantity(correction.usedAtFinalization),
    usedNow: (correction) => formatQuantity(correction.usedNow),
    lateUnits: (correction) => formatQuantity(correction.lateUnits),
    overageUnits: (correction) => formatQuantity(correction.overageUnits),
  },
  BillingExport: {
    contractId: (exported) => exported.invoice.contractId,
    accountId: (exported) => exported.invoice.accountId,
    periodStart: (exported) => exported.invoice.periodStart,
    periodEnd: (exported) => exported.invoice.periodEnd,
    currency: (exported) => exported.invoice.currency,
    final: (exported) => exported.invoice.final,
    finalizedAt: (exported) => exported.invoice.finalizedAt,
    amountDue: (exported) => exported.invoice.amountDue,
    amountDueMinor: (exported) => exported.amountDueMinor.toString(),
    pendingCorrections: (exported, _args, { services }) => correctionsOf(services.rating, exported.invoice),
  },
  BillingLine: {
    amountMinor: (line) => line.amountMinor.toString(),
  },
};

/** Each invoice object lives for one request: its corrections are computed once however many fields ask. */
const corrections = new WeakMap<InvoiceView, Promise<PendingCorrection[]>>();
function correctionsOf(rating: RatingService, invoice: InvoiceView): Promise<PendingCorrection[]> {
  let found = corrections.get(invoice);
  if (!found) {
    found = rating.pendingCorrections(invoice);
    corrections.set(invoice, found);
  }
  return found;
}

function correctionTotal(invoice: InvoiceView, corrections: ReadonlyArray<{ amount: string }>): string {
  return formatAmount(
    corrections.reduce((sum, correction) => sum.plus(correction.amount), new Money(0)),
    invoice.currency,
  );
}
