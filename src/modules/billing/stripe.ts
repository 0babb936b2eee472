/** The official Stripe SDK, pointed at STRIPE_API_BASE when set (stripe-mock in tests). */
import Stripe from 'stripe';

export type StripeClient = Stripe;

export function createStripeClient(apiKey: string, apiBase?: string): Stripe {
  const base = apiBase ? new URL(apiBase) : undefined;
  return new Stripe(apiKey, {
    maxNetworkRetries: 2,
    timeout: 20_000,
    ...(base
      ? {
          host: base.hostname,
          port: base.port || (base.protocol === 'https:' ? 443 : 80),
          protocol: base.protocol === 'http:' ? 'http' : 'https',
        }
      : {}),
  });
}
