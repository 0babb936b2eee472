/**
 * Named domain events, in process. An owner module publishes what happened (a counter
 * moved, terms changed, a grant changed capacity); the reactions subscribe in one place,
 * the composition root (src/modules/index.ts), which reads top to bottom.
 *
 * Delivery is synchronous with the publisher and in subscription order: `publish`
 * resolves when every handler has finished, and a handler's error rejects it. That is
 * what an exactly-once point needs (R7, R9): the usage engine publishes CounterChanged
 * between the counter update and settling the posting, so a handler that fails makes the
 * operation fail and recovery publish the same event again. Handlers must therefore be
 * idempotent. A publisher whose write is already durable may catch and log instead.
 */
export type EventHandler<Payload> = (payload: Payload) => void | Promise<void>;

/** What an owner module needs: publish its own events, nothing else. */
export interface EventPublisher<Events> {
  publish<Name extends keyof Events & string>(name: Name, payload: Events[Name]): Promise<void>;
}

export class EventBus<Events> implements EventPublisher<Events> {
  private readonly handlers = new Map<keyof Events, EventHandler<never>[]>();

  /** Registers a reaction; returns its unregistration. */
  on<Name extends keyof Events & string>(name: Name, handler: EventHandler<Events[Name]>): () => void {
    const list = this.handlers.get(name) ?? [];
    list.push(handler as EventHandler<never>);
    this.handlers.set(name, list);
    return () => {
      const at = list.indexOf(handler as EventHandler<never>);
      if (at >= 0) list.splice(at, 1);
    };
  }

  async publish<Name extends keyof Events & string>(name: Name, payload: Events[Name]): Promise<void> {
    const list = this.handlers.get(name);
    if (!list) return;
    for (const handler of [...list]) await (handler as EventHandler<Events[Name]>)(payload);
  }
}
