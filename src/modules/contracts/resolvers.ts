import type { Resolvers } from '../../generated/graphql.js';
import { authorize, requireScope } from '../../shared/scopes.js';
import { BadInputError, ForbiddenError } from '../../shared/errors.js';
import { formatQuantity } from '../../shared/quantity.js';
import { rateLimitView } from '../../shared/rate-window.js';
import type { OverrideEntry } from './model.js';
import { pinPlanId, planPinAt, pinsOf, statusesOf } from './plan-history.js';

/**
 * An entity representation's id, type-checked before it reaches a loader or a filter. The
 * operation budget (src/server/limits.ts) refuses malformed representations up front; this
 * guards every other way a reference can arrive.
 */
function representationId(reference: { id?: unknown }): string {
  const { id } = reference;
  if (typeof id !== 'string' || id.length === 0 || id.length > 256) {
    throw new BadInputError('A representation\'s "id" must be a non-empty string of at most 256 characters.', { field: 'id' });
  }
  return id;
}

/**
 * Authorization happens where an object enters the graph (entity references and root
 * fields), so every field below an Account or Contract is already cleared for the caller.
 */
export const contractResolvers: Resolvers = {
  Account: {
    async __resolveReference(reference, { principal, loaders }) {
      const id = representationId(reference);
      authorize(principal, 'entitlements:read', id);
      return { id, contracts: await loaders.contractsByAccount.load(id) };
    },
    contracts: (account) => account.contracts,
  },
  Contract: {
    /**
     * Authorised before loading: the scope first, then, for a customer token, one answer for
     * "not yours" and "does not exist" alike (same code, same message, naming no account),
     * so a contract id cannot be probed. Service tokens see every account, so for them an
     * unknown id is simply null: we cannot describe terms we were never sent.
     */
    async __resolveReference(reference, { principal, loaders }) {
      const id = representationId(reference);
      requireScope(principal, 'entitlements:read');
      const contract = await loaders.contractById.load(id);
      if (principal.accountId !== undefined && contract?.accountId !== principal.accountId) {
        throw new ForbiddenError(`This token cannot read contract "${id}": it does not exist or belongs to another account.`);
      }
      return contract;
    },
    id: (contract) => contract._id,
    async account(contract, _args, { loaders }) {
      return { id: contract.accountId, contracts: await loaders.contractsByAccount.load(contract.accountId) };
    },
    async plan(contract, _args, { loaders }) {
      const id = pinPlanId(planPinAt(contract, new Date()));
      const plan = await loaders.planVersionById.load(id);
      if (!plan) throw new Error(`contract ${contract._id} is pinned to missing plan version ${id}`);
      return plan;
    },
    planHistory: (contract) => pinsOf(contract),
    canceledAt: (contract) => (contract.status === 'CANCELED' ? (contract.canceledAt ?? null) : null),
    statusHistory: (contract) => statusesOf(contract),
    addOns: (contract) => contract.addOns ?? [],
    trialEndsAt: (contract) => contract.trialEndsAt ?? null,
    trialConversion: (contract) => contract.trialConversion ?? 'ACTIVATE',
    overrides: (contract) =>
      Object.entries(contract.overrides ?? {})
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([feature, override]): OverrideEntry => ({ feature, override })),
  },
  PlanPin: {
    async plan(pin, _args, { loaders }) {
      const plan = await loaders.planVersionById.load(pinPlanId(pin));
      if (!plan) throw new Error(`plan history names missing plan version ${pinPlanId(pin)}`);
      return plan;
    },
  },
  ContractOverride: {
    fields: (entry) => Object.keys(entry.override),
    enabled: (entry) => entry.override.enabled ?? null,
    included: (entry) => (entry.override.included == null ? null : formatQuantity(entry.override.included)),
    resetPeriod: (entry) => entry.override.resetPeriod ?? null,
    enforcement: (entry) => entry.override.enforcement ?? null,
    grace: (entry) => (entry.override.grace === undefined ? null : formatQuantity(entry.override.grace)),
    overage: (entry) => entry.override.overage ?? null,
    thresholds: (entry) => entry.override.thresholds ?? null,
    config: (entry) => entry.override.config ?? null,
    pooled: (entry) => entry.override.pooled ?? null,
    rateLimit: (entry) => rateLimitView(entry.override.rateLimit),
    allow: (entry) => entry.override.allow ?? null,
    credits: (entry) => entry.override.credits ?? null,
  },
  Mutation: {
    upsertContract(_root, { input }, { principal, requestId, services }) {
      authorize(principal, 'contracts:write');
      return services.contracts.upsertContract(input, { actor: principal.actor, requestId });
    },
    changeContractPlan(_root, { contractId, planKey, version, effectiveAt }, { principal, requestId, services }) {
      authorize(principal, 'contracts:write');
      return services.contracts.changePlan({ contractId, planKey, version, effectiveAt }, { actor: principal.actor, requestId });
    },
    setEntitlementOverride(_root, { contractId, input }, { principal, requestId, services }) {
      authorize(principal, 'contracts:write');
      return services.contracts.setOverride(contractId, input, { actor: principal.actor, requestId });
    },
    clearEntitlementOverride(_root, { contractId, feature }, { principal, requestId, services }) {
      authorize(principal, 'contracts:write');
      return services.contracts.clearOverride(contractId, feature, { actor: principal.actor, requestId });
    },
    setContractStatus(_root, { contractId, status }, { principal, requestId, services }) {
      authorize(principal, 'contracts:write');
      return services.contracts.setStatus(contractId, status, { actor: principal.actor, requestId });
    },
    attachAddOn(_root, { contractId, addOnKey, quantity, effectiveAt }, { principal, requestId, services }) {
      authorize(principal, 'contracts:write');
      return services.contractAddOns.attach({ contractId, addOnKey, quantity, effectiveAt }, { actor: principal.actor, requestId });
    },
    detachAddOn(_root, { contractId, addOnKey, effectiveAt }, { principal, requestId, services }) {
      authorize(principal, 'contracts:write');
      return services.contractAddOns.detach({ contractId, addOnKey, effectiveAt }, { actor: principal.actor, requestId });
    },
  },
};
