import type { Resolvers } from '../../generated/graphql.js';
import { NotFoundError } from '../../shared/errors.js';
import { authorize } from '../../shared/scopes.js';

/** Thin: authorize (webhooks:write, never a customer token), hand over to WebhookService. */
export const webhookResolvers: Resolvers = {
  Query: {
    async webhookDeliveries(_root, { endpointId, first }, { principal, services }) {
      authorize(principal, 'webhooks:write');
      if (!(await services.webhooks.endpoint(endpointId))) throw new NotFoundError(`Webhook endpoint "${endpointId}" does not exist.`);
      return services.webhooks.deliveries(endpointId, first ?? 50);
    },
  },
  Mutation: {
    createWebhookEndpoint(_root, { input }, { principal, requestId, services }) {
      authorize(principal, 'webhooks:write');
      return services.webhooks.createEndpoint(input, { actor: principal.actor, requestId });
    },
    deleteWebhookEndpoint(_root, { id }, { principal, requestId, services }) {
      authorize(principal, 'webhooks:write');
      return services.webhooks.deleteEndpoint(id, { actor: principal.actor, requestId });
    },
    redeliverWebhook(_root, { deliveryId }, { principal, requestId, services }) {
      authorize(principal, 'webhooks:write');
      return services.webhooks.redeliver(deliveryId, { actor: principal.actor, requestId });
    },
  },
  WebhookDelivery: {
    id: (delivery) => delivery._id,
    webhookId: (delivery) => delivery.eventId,
    nextAttemptAt: (delivery) => (delivery.status === 'PENDING' ? delivery.nextAttemptAt : null),
  },
};
