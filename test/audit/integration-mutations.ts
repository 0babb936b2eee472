/**
 * The integrations' mutations (R21, R22) for the audit-trail test (mutations.test.ts):
 * how to send each, and the entries it must leave. syncInvoice runs on a second instance
 * of the same database configured for stripe-mock.
 */
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { startStripeMock } from '../support/stripe-mock.js';

export interface AuditedMutation {
  field: string;
  requestId: string;
  send: (requestId: string) => Promise<unknown>;
  expected: Array<Record<string, unknown>>;
}

export function integrationMutations(context: {
  send: (requestId: string, query: string, variables?: Record<string, unknown>) => Promise<any>;
  instance: () => TestInstance;
  accountId: string;
  /** The contract whose January 2026 invoice the audit test finalised. */
  billedContractId: string;
}): AuditedMutation[] {
  const { send, accountId, billedContractId } = context;
  let endpointId = '';
  return [
    {
      field: 'createWebhookEndpoint',
      requestId: 'req-create-webhook',
      send: async (id) => {
        // TEST-NET-2: a public address that resolves without DNS (its attempts just time out).
        const input = { url: 'https://198.51.100.7/hooks', events: ['grant.issued'], accountId };
        const data = await send(
          id,
          `mutation ($input: WebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } } }`,
          {
            input,
          },
        );
        endpointId = data.createWebhookEndpoint.endpoint.id;
        return data;
      },
      expected: [
        {
          action: 'webhook_endpoint.created',
          targetType: 'WebhookEndpoint',
          accountId,
          after: { url: 'https://198.51.100.7/hooks', events: ['grant.issued'] },
        },
      ],
    },
    {
      field: 'redeliverWebhook',
      requestId: 'req-redeliver-webhook',
      send: async (id) => {
        await context.instance().services.webhooks.record({ type: 'grant.issued', sourceId: 'audit-redelivery', accountId, data: {} });
        const listed = await send(`${id}-list`, `query ($id: ID!) { webhookDeliveries(endpointId: $id) { id } }`, { id: endpointId });
        return send(id, `mutation ($id: ID!) { redeliverWebhook(deliveryId: $id) { id } }`, { id: listed.webhookDeliveries[0].id });
      },
      expected: [{ action: 'webhook.redelivered', targetType: 'WebhookDelivery', accountId, after: { status: 'PENDING' } }],
    },
    {
      field: 'deleteWebhookEndpoint',
      requestId: 'req-delete-webhook',
      send: (id) => send(id, `mutation ($id: ID!) { deleteWebhookEndpoint(id: $id) }`, { id: endpointId }),
      expected: [{ action: 'webhook_endpoint.deleted', targetType: 'WebhookEndpoint', accountId, after: null }],
    },
    {
      field: 'setBillingCustomer',
      requestId: 'req-set-billing-customer',
      send: (id) =>
        send(id, `mutation ($a: ID!) { setBillingCustomer(accountId: $a, provider: STRIPE, customerId: "cus_audit") { id } }`, {
          a: accountId,
        }),
      expected: [
        {
          action: 'billing_customer.set',
          targetType: 'Account',
          targetId: accountId,
          before: null,
          after: { provider: 'STRIPE', customerId: 'cus_audit' },
        },
      ],
    },
    {
      field: 'syncInvoice',
      requestId: 'req-sync-invoice',
      send: async (id) => {
        const stripe = await startStripeMock();
        const env = { STRIPE_API_KEY: 'sk_test_audit', STRIPE_API_BASE: stripe.url };
        const billing = await startTestInstance({ dbName: context.instance().dbName, env });
        try {
          const response = await fetch(billing.url, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${await signToken({ sub: 'ops@example.com' })}`,
              'x-request-id': id,
            },
            body: JSON.stringify({
              query: `mutation ($c: ID!) { syncInvoice(contractId: $c, periodStart: "2026-01-01T00:00:00Z") { status } }`,
              variables: { c: billedContractId },
            }),
          });
          return await response.json();
        } finally {
          await billing.stop();
          await stripe.stop();
        }
      },
      expected: [
        {
          action: 'invoice.synced',
          targetType: 'Contract',
          targetId: billedContractId,
          accountId,
          after: { provider: 'STRIPE', lines: 0 },
        },
      ],
    },
  ];
}
