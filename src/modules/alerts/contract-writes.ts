import type { Logger } from '../../logger.js';

/** The contract writes that change an account's terms now, each resolving to the contract. */
export const TERMS_WRITES = ['upsertContract', 'changePlan', 'setOverride', 'clearOverride', 'setStatus'] as const;
type TermsWrites = { [K in (typeof TERMS_WRITES)[number]]: (...args: any[]) => Promise<{ accountId: string }> };

/**
 * Has every terms-changing write of the contracts service followed by
 * `onTermsChanged(accountId)` (AlertService: thresholds re-evaluated, live balances
 * pushed), at the composition root, without the contracts module knowing about alerts.
 * The write is already stored and audited when the follow-up runs, so a failure there is
 * logged, not thrown: the next counter change evaluates the new terms anyway.
 */
export function followContractWrites<S extends TermsWrites>(service: S, onTermsChanged: (accountId: string) => Promise<void>, logger: Logger): S {
  for (const name of TERMS_WRITES) {
    const write = service[name].bind(service);
    service[name] = (async (...args: unknown[]) => {
      const contract = await write(...args);
      await onTermsChanged(contract.accountId).catch((error: unknown) =>
        logger.warn({ err: error, accountId: contract.accountId, write: name }, 'could not re-evaluate thresholds after a contract write'),
      );
      return contract;
    }) as S[typeof name];
  }
  return service;
}
