/**
 * Fixtures for the rating tests: the data platform plans (rows scanned, UP and EXACT),
 * the scale plan the API company upgrades to, and the invoice operations.
 */
import { randomUUID } from 'node:crypto';
import { gql, publishPlan, upsertContract } from './fixtures.js';
import type { GraphQLResponse, TestInstance } from './harness.js';

/** Events keep fixed 2026 timestamps; a long retention keeps them recordable for years. */
export const RATING_ENV = { RETENTION_DAYS: '3650' };

export const LINE_FIELDS = 'id kind feature description quantity unitPrice amount periodStart periodEnd planKey planVersion prorated';

export const INVOICE_FIELDS = `contractId accountId periodStart periodEnd currency total exactTotal amountDue final finalizedAt finalizedBy
  lines { ${LINE_FIELDS} }
  usage { feature featureName unit periodStart periodEnd included granted used coveredByIncluded coveredByGrants overage
    unitPrice per rounding grossBlocks netBlocks amount grants { grantId kind units } }
  pendingCorrections { feature periodStart periodEnd usedAtFinalization usedNow lateUnits lateEvents overageUnits amount }
  correctionTotal`;

export const INVOICE_PREVIEW = `query ($id: ID!, $periodStart: DateTime) {
  _entities(representations: [{ __typename: "Contract", id: $id }]) { ... on Contract { invoicePreview(periodStart: $periodStart) { ${INVOICE_FIELDS} } } } }`;

export const FINALIZE_INVOICE = `mutation ($contractId: ID!, $periodStart: DateTime!) {
  finalizeInvoice(contractId: $contractId, periodStart: $periodStart) { ${INVOICE_FIELDS} } }`;

export const BILLING_EXPORT = `query ($contractId: ID!, $periodStart: DateTime) {
  billingExport(contractId: $contractId, periodStart: $periodStart) {
    contractId accountId periodStart periodEnd currency final finalizedAt amountDue amountDueMinor
    lines { id idempotencyKey kind feature description accountId contractId currency amountMinor amount quantity unitAmountDecimal
      unitPricingExact periodStart periodEnd metadata }
    pendingCorrections { feature lateUnits amount } } }`;

export function invoicePreview(
  instance: TestInstance,
  id: string,
  periodStart?: string,
  options?: { token?: string | null },
): Promise<GraphQLResponse> {
  return instance.graphql(INVOICE_PREVIEW, { id, periodStart }, options);
}

export async function invoicePreviewOk(instance: TestInstance, id: string, periodStart?: string): Promise<any> {
  return (await gql(instance, INVOICE_PREVIEW, { id, periodStart }))._entities[0].invoicePreview;
}

export function finalizeInvoice(
  instance: TestInstance,
  contractId: string,
  periodStart: string,
  options?: { token?: string | null },
): Promise<GraphQLResponse> {
  return instance.graphql(FINALIZE_INVOICE, { contractId, periodStart }, options);
}

export async function finalizeInvoiceOk(instance: TestInstance, contractId: string, periodStart: string): Promise<any> {
  return (await gql(instance, FINALIZE_INVOICE, { contractId, periodStart })).finalizeInvoice;
}

/** [kind, feature, quantity, unitPrice, amount] of each line: the shape of a hand-computed table. */
export function table(invoice: { lines: Array<Record<string, any>> }): Array<[string, string | null, string, string | null, string]> {
  return invoice.lines.map((line) => [line.kind, line.feature, line.quantity, line.unitPrice, line.amount]);
}

/** A fresh suffix for plan keys and ids: lowercase letters and digits. */
export function uniqueSuffix(): string {
  return randomUUID().replaceAll('-', '').slice(0, 10);
}

export const ROWS_SCANNED = { key: 'rows_scanned', name: 'Rows scanned', type: 'METERED', unit: 'row' } as const;

/**
 * The data platform: a $2,000 base fee, 5,000,000 rows scanned included a month, $0.40 per
 * extra 1,000 rows (SOFT), with overage blocks rounded as given. Each call gets its own plan
 * key, account and contract, from `startsAt` (default 2026-03-01).
 */
export async function dataPlatformContract(
  instance: TestInstance,
  rounding: 'UP' | 'EXACT',
  options: { startsAt?: string; unitPrice?: string; per?: string; included?: string; baseFee?: string | null } = {},
): Promise<{ accountId: string; contractId: string; planKey: string }> {
  const suffix = uniqueSuffix();
  const planKey = `data_platform_${suffix}`;
  await publishPlan(instance, {
    key: planKey,
    name: 'Data platform',
    currency: 'USD',
    baseFee: options.baseFee === undefined ? '2000' : options.baseFee,
    entitlements: [
      {
        feature: ROWS_SCANNED.key,
        included: options.included ?? '5000000',
        enforcement: 'SOFT',
        overage: { unitPrice: options.unitPrice ?? '0.40', per: options.per ?? '1000', rounding },
      },
    ],
  });
  const accountId = `acct_dp_${suffix}`;
  const contractId = `ctr_dp_${suffix}`;
  await upsertContract(instance, { id: contractId, accountId, planKey, startsAt: options.startsAt ?? '2026-03-01T00:00:00Z' });
  return { accountId, contractId, planKey };
}

/**
 * Scale, the plan the API company upgrades to: $1,499, 15,000,000 API calls included (SOFT,
 * $0.20 per 1,000 rounded up), bulk exports as on growth.
 */
export const SCALE_PLAN = {
  key: 'scale',
  name: 'Scale',
  currency: 'USD',
  baseFee: '1499.00',
  entitlements: [
    { feature: 'api_calls', included: '15000000', enforcement: 'SOFT', overage: { unitPrice: '0.20', per: '1000', rounding: 'UP' } },
    { feature: 'bulk_export', included: '50000', enforcement: 'SOFT', overage: { unitPrice: '2', per: '1000' } },
    { feature: 'sso' },
  ],
};

export const CHANGE_PLAN = `mutation ($contractId: ID!, $planKey: ID!, $effectiveAt: DateTime) {
  changeContractPlan(contractId: $contractId, planKey: $planKey, effectiveAt: $effectiveAt) { id } }`;

export const ISSUE_GRANT = `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id kind amount } }`;

export const SET_STATUS = `mutation ($contractId: ID!, $status: ContractStatus!) {
  setContractStatus(contractId: $contractId, status: $status) { id status canceledAt statusHistory { status at } } }`;

export const SET_OVERRIDE = `mutation ($contractId: ID!, $input: EntitlementOverrideInput!) { setEntitlementOverride(contractId: $contractId, input: $input) { id } }`;

/**
 * Two plans that enable rows_scanned for one account (the billing audit's case): a base
 * plan ($100, 1,000 rows included, $0.10 a row over) and an add-on ($20, 500 more rows,
 * $0.10 a row). SOFT, so usage beyond the merged capacity is accepted as overage.
 */
export async function sharedRowsPlans(instance: TestInstance): Promise<{ base: string; addon: string }> {
  const suffix = uniqueSuffix();
  const base = `rows_base_${suffix}`;
  const addon = `rows_addon_${suffix}`;
  await publishPlan(instance, {
    key: base,
    name: 'Rows base',
    currency: 'USD',
    baseFee: '100',
    entitlements: [
      { feature: ROWS_SCANNED.key, included: '1000', enforcement: 'SOFT', overage: { unitPrice: '0.10', per: '1', rounding: 'EXACT' } },
    ],
  });
  await publishPlan(instance, {
    key: addon,
    name: 'Rows add-on',
    currency: 'USD',
    baseFee: '20',
    entitlements: [
      { feature: ROWS_SCANNED.key, included: '500', enforcement: 'SOFT', overage: { unitPrice: '0.10', per: '1', rounding: 'EXACT' } },
    ],
  });
  return { base, addon };
}
