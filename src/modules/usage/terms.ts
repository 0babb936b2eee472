import type { Micros } from '../../shared/quantity.js';
import type { EffectiveTerms } from '../entitlements/index.js';
import type { DecisionReason } from './model.js';

/**
 * What the usage engine needs from other modules, as plain function types, so the engine
 * is testable on its own and the modules stay decoupled. src/modules/index.ts wires the
 * real implementations.
 */

/** The entitlements module's batched resolution of merged contract terms at an instant (R4). */
export type TermsAtInstant = (requests: ReadonlyArray<{ accountId: string; feature: string }>, at: Date) => Promise<EffectiveTerms[]>;

/** Terms for each request at its own instant (see timeline.ts), in request order. */
export type TermsResolver = (requests: ReadonlyArray<{ accountId: string; feature: string; at: Date }>) => Promise<EffectiveTerms[]>;

/** The decision rule for one request of `requested` units when `used` are already counted (R6). */
export type Decide = (
  terms: EffectiveTerms,
  used: Micros,
  granted: Micros,
  requested: Micros,
) => { allowed: boolean; reason: DecisionReason };

/**
 * THE plug-in point for credit grants (issue 6): the granted units available to each
 * terms' counter at `at`, so capacity = included + granted and the HARD limit is
 * capacity + grace. It has the shape of the entitlements module's
 * `GrantedSource.grantedFor`, and src/modules/index.ts feeds both modules from the same
 * source, so checks and enforcement can never disagree.
 */
export type GrantedCapacity = (terms: readonly EffectiveTerms[], at: Date) => Promise<Micros[]>;

/**
 * A terms resolver for the duration of one request: one set of DataLoaders, so a batch
 * with many timestamps reads contracts once (src/modules/index.ts builds it).
 */
export type OpenTerms = () => TermsResolver;
