/**
 * R10 for the gauge mutation (R16): setUsage is audited like recordUsage, the set level in
 * `quantity` and `set: true`. The gauge is enabled on the audit test's contract first,
 * under a request id of its own.
 */
import type { AuditedMutation } from './integration-mutations.js';

export function gaugeMutations(context: {
  send: (requestId: string, query: string, variables?: Record<string, unknown>) => Promise<any>;
  accountId: string;
  contractId: string;
  run: string;
}): AuditedMutation[] {
  const { send, accountId, contractId, run } = context;
  const gauge = `seats_${run}`;
  return [
    {
      field: 'setUsage',
      requestId: 'req-set-usage',
      send: async (id) => {
        await send('req-set-usage-setup', `mutation ($input: FeatureInput!) { defineFeature(input: $input) { key } }`, {
          input: { key: gauge, name: 'Seats', type: 'GAUGE' },
        });
        await send(
          'req-set-usage-setup',
          `mutation ($id: ID!, $input: EntitlementOverrideInput!) { setEntitlementOverride(contractId: $id, input: $input) { id } }`,
          { id: contractId, input: { feature: gauge, enabled: true, included: '5' } },
        );
        const set = `mutation ($input: SetUsageInput!) { setUsage(input: $input) { status } }`;
        return send(id, set, { input: { accountId, feature: gauge, value: '3', idempotencyKey: 'seats-set' } });
      },
      expected: [
        {
          action: 'usage.accepted',
          targetType: 'UsageEvent',
          targetId: 'seats-set',
          before: { used: '0' },
          after: { feature: gauge, used: '3', quantity: '3', set: true, reason: 'INCLUDED' },
        },
      ],
    },
  ];
}
