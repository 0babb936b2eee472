import { BadInputError } from '../../shared/errors.js';
import type { CatalogReads, PlanVersionDoc } from '../catalog/index.js';

/** The plan version a contract write pins: the one asked for, or the latest when none is. */
export async function resolvePlan(catalog: CatalogReads, planKey: string, version: number | null | undefined): Promise<PlanVersionDoc> {
  if (version === null || version === undefined) {
    const latest = await catalog.findLatestPlanVersion(planKey);
    if (!latest) throw new BadInputError(`Unknown plan "${planKey}": publish it with publishPlan first.`, { field: 'planKey' });
    return latest;
  }
  if (!Number.isInteger(version) || version < 1)
    throw new BadInputError(`planVersion must be 1 or more; got ${version}.`, { field: 'planVersion' });
  const plan = await catalog.findPlanVersion(planKey, version);
  if (plan) return plan;
  const latest = await catalog.findLatestPlanVersion(planKey);
  throw new BadInputError(
    latest
      ? `Plan "${planKey}" has no version ${version}; the latest is ${latest.version}.`
      : `Unknown plan "${planKey}": publish it with publishPlan first.`,
    { field: 'planVersion' },
  );
}
