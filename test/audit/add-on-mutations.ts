/**
 * The add-on mutations (R17) for the audit-trail test (mutations.test.ts): how to send each,
 * and the entries it must leave. Sent last, since an attached add-on changes capacity.
 */
import type { AuditedMutation } from './integration-mutations.js';

export function addOnMutations(context: {
  send: (requestId: string, query: string, variables?: Record<string, unknown>) => Promise<any>;
  accountId: string;
  contractId: string;
  feature: string;
  addOnKey: string;
}): AuditedMutation[] {
  const { send, accountId, contractId, feature, addOnKey } = context;
  const segment = { addOn: `${addOnKey}@1`, price: '5', quantity: 2, endsAt: null };
  return [
    {
      field: 'publishAddOn',
      requestId: 'req-publish-add-on',
      send: (id) =>
        send(id, `mutation ($input: AddOnInput!) { publishAddOn(input: $input) { version } }`, {
          input: { key: addOnKey, name: 'Audited boost', currency: 'USD', price: '5', entitlements: [{ feature, included: '1' }] },
        }),
      expected: [
        { action: 'add_on.published', targetType: 'AddOnVersion', targetId: `${addOnKey}@1`, before: null, after: { price: '5' } },
      ],
    },
    {
      field: 'attachAddOn',
      requestId: 'req-attach-add-on',
      send: (id) =>
        send(id, `mutation ($c: ID!, $k: ID!) { attachAddOn(contractId: $c, addOnKey: $k, quantity: 2) { id } }`, {
          c: contractId,
          k: addOnKey,
        }),
      expected: [
        {
          action: 'contract.add_on_attached',
          targetType: 'Contract',
          targetId: contractId,
          accountId,
          before: { addOns: [] },
          after: { addOns: [segment] },
        },
      ],
    },
    {
      field: 'detachAddOn',
      requestId: 'req-detach-add-on',
      send: (id) =>
        send(id, `mutation ($c: ID!, $k: ID!) { detachAddOn(contractId: $c, addOnKey: $k) { id } }`, { c: contractId, k: addOnKey }),
      expected: [
        {
          action: 'contract.add_on_detached',
          targetType: 'Contract',
          targetId: contractId,
          accountId,
          before: { addOns: [segment] },
        },
      ],
    },
  ];
}
