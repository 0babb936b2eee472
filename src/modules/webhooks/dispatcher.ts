/**
 * Delivery, on every instance. A tick claims due deliveries one by one (an atomic
 * findOneAndUpdate each, so two instances never send the same attempt) until this
 * instance's slots are full: at most `concurrencyPerEndpoint` in flight per endpoint and
 * `maxInFlight` in all. An endpoint at its bound is left out of the claim's filter, so a
 * slow or dead receiver only ever occupies its own slots; ingestion never waits for any
 * of this (producers only write the outbox).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../logger.js';
import { givesUp, nextDelayMs } from './backoff.js';
import type { DeliveryDoc } from './model.js';
import type { WebhookRepository } from './repository.js';
import { signatureHeaders } from './signing.js';
import { refusedTarget } from './targets.js';

export interface DispatcherOptions {
  allowPrivate: boolean;
  retryBaseMs: number;
  concurrencyPerEndpoint: number;
  timeoutMs: number;
  maxInFlight?: number;
  pollMs?: number;
}

export class WebhookDispatcher {
  private readonly owner = `dispatcher-${randomUUID()}`;
  private readonly inFlight = new Map<string, number>();
  private total = 0;
  private timer: NodeJS.Timeout | undefined;
  private filling = false;
  private refill = false;
  private readonly running = new Set<Promise<void>>();
  private stopped = true;
  /** Aborts attempts in flight when the instance stops (their claims expire; another instance retries). */
  private aborter = new AbortController();

  constructor(
    private readonly repository: WebhookRepository,
    private readonly logger: Logger,
    private readonly options: DispatcherOptions,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.aborter = new AbortController();
    this.timer = setInterval(() => this.nudge(), this.options.pollMs ?? 250);
    this.timer.unref();
    this.nudge();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.aborter.abort();
    await Promise.allSettled([...this.running]);
  }

  /** Claims what is due now (called on every tick and after every outbox write here). */
  nudge(): void {
    if (this.stopped) return;
    if (this.filling) {
      this.refill = true;
      return;
    }
    this.filling = true;
    this.fill()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'webhook claim failed; the next tick retries'))
      .finally(() => {
        this.filling = false;
        if (this.refill) {
          this.refill = false;
          this.nudge();
        }
      });
  }

  private async fill(): Promise<void> {
    const maxInFlight = this.options.maxInFlight ?? 64;
    const leaseMs = this.options.timeoutMs + 30_000;
    while (!this.stopped && this.total < maxInFlight) {
      const busy = [...this.inFlight].filter(([, n]) => n >= this.options.concurrencyPerEndpoint).map(([id]) => id);
      const delivery = await this.repository.claim(this.owner, new Date(), leaseMs, busy);
      if (!delivery) return;
      this.inFlight.set(delivery.endpointId, (this.inFlight.get(delivery.endpointId) ?? 0) + 1);
      this.total += 1;
      const attempt = this.attempt(delivery)
        .catch((error: unknown) => this.logger.warn({ err: error, deliveryId: delivery._id }, 'webhook attempt could not be recorded'))
        .finally(() => {
          this.running.delete(attempt);
          this.total -= 1;
          const left = (this.inFlight.get(delivery.endpointId) ?? 1) - 1;
          if (left > 0) this.inFlight.set(delivery.endpointId, left);
          else this.inFlight.delete(delivery.endpointId);
          this.nudge();
        });
      this.running.add(attempt);
    }
  }

  private async attempt(delivery: DeliveryDoc): Promise<void> {
    const [endpoint, event] = await Promise.all([
      this.repository.endpoints.findOne({ _id: delivery.endpointId }),
      this.repository.events.findOne({ _id: delivery.eventId }),
    ]);
    const now = new Date();
    const finish = (status: number | null, error: string | null, succeeded: boolean, retry = true) => {
      const attempts = delivery.attempts + 1;
      const failed = !succeeded && (!retry || givesUp(delivery.createdAt, now));
      return this.repository.settle(delivery._id, this.owner, {
        status: succeeded ? 'SUCCEEDED' : failed ? 'FAILED' : 'PENDING',
        nextAttemptAt: succeeded || failed ? now : new Date(now.getTime() + nextDelayMs(attempts, this.options.retryBaseMs)),
        lastAttemptAt: now,
        responseStatus: status,
        lastError: error,
      });
    };
    if (!endpoint || endpoint.deletedAt || !event) return finish(null, 'endpoint deleted', false, false);
    const refused = await refusedTarget(endpoint.url, this.options.allowPrivate);
    if (refused) return finish(null, refused, false);
    const body = JSON.stringify({ type: event.type, timestamp: event.createdAt.toISOString(), data: event.data });
    const headers = signatureHeaders(endpoint.secret, event._id, Math.floor(now.getTime() / 1000), body);
    try {
      const response = await fetch(endpoint.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'Allotment-Webhooks/1', ...headers },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), this.aborter.signal]),
      });
      await response.body?.cancel();
      const ok = response.status >= 200 && response.status < 300;
      return finish(response.status, ok ? null : `HTTP ${response.status}`, ok);
    } catch (error) {
      if (this.stopped) return; // stopping: leave the claim to expire, the attempt is not the receiver's fault
      return finish(null, error instanceof Error ? error.message.slice(0, 200) : 'request failed', false);
    }
  }
}
