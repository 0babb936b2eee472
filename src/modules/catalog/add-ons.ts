/**
 * Add-ons (R17): versioned like plans, in a key namespace of their own (`add_on_versions`),
 * so an add-on and a plan may share a key. A version holds a price per billing period and
 * entitlements validated exactly as a plan's (parsePlanEntitlement); contracts attach a
 * version with a quantity (the contracts module), and their entitlements merge into the
 * contract's with the R4 rules, `included` multiplied by the quantity.
 */
import type { Collection, Db } from 'mongodb';
import { insertUnlessPresent, type CollectionIndexes } from '../../db/mongo.js';
import { BadInputError } from '../../shared/errors.js';
import { parseCurrency, parseMoney } from '../../shared/money.js';
import type { ResetPeriod } from '../../shared/periods.js';
import type { Actor, AuditLog } from '../audit/index.js';
import type { EntitlementTerms, FeatureDoc } from './model.js';
import { parseKey, parseName, parsePlanEntitlement, type PlanEntitlementInputShape } from './validation.js';

export const ADD_ON_VERSIONS = 'add_on_versions';

export const addOnIndexes: CollectionIndexes = {
  collection: ADD_ON_VERSIONS,
  indexes: [{ key: { key: 1, version: -1 }, name: 'by_key_version' }],
};

/** An immutable published version of an add-on. */
export interface AddOnVersionDoc {
  /** `${key}@${version}` */
  _id: string;
  key: string;
  version: number;
  name: string;
  currency: string;
  /** Exact money string per billing period and unit of quantity; null when free. */
  price: string | null;
  billingPeriod: ResetPeriod;
  /** Per unit of quantity: `included` is multiplied by the attached quantity. */
  entitlements: EntitlementTerms[];
  publishedAt: Date;
  publishedBy: string;
}

export interface AddOnInputShape {
  key: string;
  name: string;
  currency: string;
  price?: string | null;
  billingPeriod?: ResetPeriod | null;
  entitlements: readonly PlanEntitlementInputShape[];
}

const MAX_ADD_ON_ENTITLEMENTS = 100;
const PUBLISH_ATTEMPTS = 8;
const CACHE_LIMIT = 10_000;

export function addOnVersionId(key: string, version: number): string {
  return `${key}@${version}`;
}

/** Publishing and reading add-on versions. Versions never change, so found ones are cached. */
export class AddOnCatalog {
  private readonly versions: Collection<AddOnVersionDoc>;
  private readonly cache = new Map<string, AddOnVersionDoc>();

  constructor(
    db: Db,
    private readonly audit: AuditLog,
    private readonly findFeatures: (keys: readonly string[]) => Promise<FeatureDoc[]>,
  ) {
    this.versions = db.collection<AddOnVersionDoc>(ADD_ON_VERSIONS);
  }

  /** Publishes version N+1 of an add-on key; the unique `_id` makes the number race-free. */
  async publish(input: AddOnInputShape, by: Actor): Promise<AddOnVersionDoc> {
    const draft = await this.validate(input);
    for (let attempt = 0; attempt < PUBLISH_ATTEMPTS; attempt++) {
      const latest = await this.findLatest(draft.key);
      const version = (latest?.version ?? 0) + 1;
      const doc: AddOnVersionDoc = {
        ...draft,
        _id: addOnVersionId(draft.key, version),
        version,
        publishedAt: new Date(),
        publishedBy: by.actor,
      };
      if (!(await insertUnlessPresent(this.versions, doc))) continue;
      this.remember(doc);
      await this.audit.record({
        actor: by.actor,
        action: 'add_on.published',
        targetType: 'AddOnVersion',
        targetId: doc._id,
        before: latest ? { version: latest.version } : null,
        after: doc,
        requestId: by.requestId,
      });
      return doc;
    }
    throw new Error(`publishAddOn("${draft.key}") lost the version race ${PUBLISH_ATTEMPTS} times`);
  }

  async find(key: string, version: number): Promise<AddOnVersionDoc | null> {
    const id = addOnVersionId(key, version);
    const cached = this.cache.get(id);
    if (cached) return cached;
    const doc = await this.versions.findOne({ _id: id });
    if (doc) this.remember(doc);
    return doc;
  }

  async findLatest(key: string): Promise<AddOnVersionDoc | null> {
    const [latest] = await this.versions.find({ key }).sort({ version: -1 }).limit(1).toArray();
    if (latest) this.remember(latest);
    return latest ?? null;
  }

  private async validate(input: AddOnInputShape): Promise<Omit<AddOnVersionDoc, '_id' | 'version' | 'publishedAt' | 'publishedBy'>> {
    const key = parseKey(input.key, 'key');
    const billingPeriod = input.billingPeriod ?? 'MONTH';
    if (billingPeriod === 'NEVER') {
      throw new BadInputError('billingPeriod must be DAY, WEEK, MONTH or YEAR: an add-on is billed per period.', {
        field: 'billingPeriod',
      });
    }
    if (input.entitlements.length === 0 && input.price == null) {
      throw new BadInputError('An add-on needs entitlements or a price; this one has neither.', { field: 'entitlements' });
    }
    if (input.entitlements.length > MAX_ADD_ON_ENTITLEMENTS) {
      throw new BadInputError(`An add-on may hold at most ${MAX_ADD_ON_ENTITLEMENTS} entitlements.`, { field: 'entitlements' });
    }
    const seen = new Set<string>();
    input.entitlements.forEach((entitlement, index) => {
      parseKey(entitlement.feature, `entitlements[${index}].feature`);
      if (seen.has(entitlement.feature)) {
        throw new BadInputError(
          `Feature "${entitlement.feature}" appears twice in entitlements; an add-on holds one entitlement per feature.`,
          {
            field: `entitlements[${index}].feature`,
          },
        );
      }
      seen.add(entitlement.feature);
    });
    const features = new Map((await this.findFeatures([...seen])).map((doc) => [doc._id, doc]));
    const entitlements = input.entitlements.map((entitlement, index) => {
      const feature = features.get(entitlement.feature);
      if (!feature) {
        throw new BadInputError(
          `Unknown feature "${entitlement.feature}": define it with defineFeature before publishing an add-on that uses it.`,
          {
            field: `entitlements[${index}].feature`,
          },
        );
      }
      if (entitlement.pooled) {
        throw new BadInputError('An add-on entitlement cannot be pooled; mark the plan entitlement or an override pooled instead.', {
          field: `entitlements[${index}].pooled`,
        });
      }
      return parsePlanEntitlement(entitlement, feature, `entitlements[${index}]`);
    });
    const price = input.price == null ? null : parseMoney(input.price, 'price');
    return {
      key,
      name: parseName(input.name, 'name'),
      currency: parseCurrency(input.currency),
      price: price === null ? null : price.toFixed(),
      billingPeriod,
      entitlements,
    };
  }

  private remember(doc: AddOnVersionDoc): void {
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(doc._id, doc);
  }
}
