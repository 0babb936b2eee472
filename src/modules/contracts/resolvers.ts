import type { Resolvers } from '../../generated/graphql.js';
import { authorize } from '../../server/auth.js';
import { formatQuantity } from '../../shared/quantity.js';
import type { OverrideEntry } from './model.js';
import { pinPlanId, planPinAt, pinsOf } from './plan-history.js';

/**
 * Authorization happens where an object enters the graph (entity references and root
 * fields), so every field below an Account or Contract is already cleared for the caller.
 */
export const contractResolvers: Resolvers = {
  Account: {
    async __resolveReference(reference, { principal, loaders }) {
      authorize(principal, 'entitlements:read', reference.id);
      return { id: reference.id, contracts: await loaders.contractsByAccount.load(reference.id) };
    },
    contracts: (account) => account.contracts,
  },
  Contract: {
    // Unknown contract ids resolve to null: we cannot describe terms we were never sent.
    async __resolveReference(reference, { principal, loaders }) {
      const contract = await loaders.contractById.load(reference.id);
      if (contract) authorize(principal, 'entitlements:read', contract.accountId);
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
  },
};
