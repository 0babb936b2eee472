/**
 * Grant operations over the wire, and instants relative to now: the scenarios place
 * usage (backdated event timestamps) and grant windows in past and current periods.
 */
import { randomUUID } from 'node:crypto';
import { periodContaining, periodStartAt, type Period } from '../../src/shared/periods.js';
import { ENTITLEMENT_FIELDS, gql } from '../support/fixtures.js';
import type { GraphQLResponse, TestInstance } from '../support/harness.js';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export const floorHour = (ms: number): number => Math.floor(ms / HOUR) * HOUR;
export const iso = (ms: number | Date): string => new Date(ms).toISOString();

export const GRANT_FIELDS = `id accountId feature kind amount burned remaining priority effectiveAt expiresAt status reason
  issuedBy issuedAt idempotencyKey activeFrom activeUntil voidedAt voidedBy voidReason`;

export const ISSUE_GRANT = `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { ${GRANT_FIELDS} } }`;
export const VOID_GRANT = `mutation ($id: ID!, $reason: String!) { voidGrant(id: $id, reason: $reason) { ${GRANT_FIELDS} } }`;

export interface GrantInput {
  accountId: string;
  feature?: string;
  amount: string;
  reason?: string;
  idempotencyKey?: string;
  kind?: 'PROMOTIONAL' | 'PREPAID';
  priority?: number;
  effectiveAt?: string;
  expiresAt?: string;
}

export type Grant = Record<string, any> & { id: string; status: string; burned: string; remaining: string };

export function grantInput(input: GrantInput): Required<Pick<GrantInput, 'feature' | 'reason' | 'idempotencyKey'>> & GrantInput {
  return { feature: 'api_calls', reason: 'SLA credit for ticket 4411', idempotencyKey: `grant-${randomUUID()}`, ...input };
}

export function issueGrant(
  instance: TestInstance,
  input: GrantInput,
  options?: { token?: string | null },
): Promise<GraphQLResponse<{ issueGrant: Grant }>> {
  return instance.graphql<{ issueGrant: Grant }>(ISSUE_GRANT, { input: grantInput(input) }, options);
}

export async function issueGrantOk(instance: TestInstance, input: GrantInput): Promise<Grant> {
  return (await gql<{ issueGrant: Grant }>(instance, ISSUE_GRANT, { input: grantInput(input) })).issueGrant;
}

export async function voidGrantOk(instance: TestInstance, id: string, reason = 'issued to the wrong account'): Promise<Grant> {
  return (await gql<{ voidGrant: Grant }>(instance, VOID_GRANT, { id, reason })).voidGrant;
}

export async function grantsOf(
  instance: TestInstance,
  accountId: string,
  options: { feature?: string; activeOnly?: boolean } = {},
): Promise<Grant[]> {
  const data = await gql(
    instance,
    `query ($id: ID!, $feature: ID, $activeOnly: Boolean) {
      _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account { grants(feature: $feature, activeOnly: $activeOnly) { ${GRANT_FIELDS} } } } }`,
    { id: accountId, feature: options.feature ?? null, activeOnly: options.activeOnly ?? false },
  );
  return data._entities[0].grants;
}

export const grantById = async (instance: TestInstance, accountId: string, id: string): Promise<Grant> =>
  (await grantsOf(instance, accountId)).find((grant) => grant.id === id)!;

export async function grantBurn(
  instance: TestInstance,
  accountId: string,
  feature = 'api_calls',
  periodStart?: string,
): Promise<Record<string, any>> {
  const data = await gql(
    instance,
    `query ($id: ID!, $feature: ID!, $periodStart: DateTime) {
      _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account {
        grantBurn(feature: $feature, periodStart: $periodStart) {
          accountId feature periodStart periodEnd included used includedBurned uncovered
          grants { grant { id status burned remaining } availableAtStart burned remainingAtEnd }
          lines { source grantId from to units }
        } } } }`,
    { id: accountId, feature, periodStart: periodStart ?? null },
  );
  return data._entities[0].grantBurn;
}

export async function entitlementOf(
  instance: TestInstance,
  accountId: string,
  feature = 'api_calls',
  at?: string,
): Promise<Record<string, any>> {
  const data = await gql(
    instance,
    `query ($id: ID!, $feature: ID!, $at: DateTime) {
      _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account { entitlement(feature: $feature, at: $at) { ${ENTITLEMENT_FIELDS} } } } }`,
    { id: accountId, feature, at: at ?? null },
  );
  return data._entities[0].entitlement;
}

/** Monthly periods of a contract anchored at `anchor`: the k-th, and the one containing now. */
export function monthly(anchor: number): { period(k: number): { start: Date; end: Date }; current: Period } {
  const start = new Date(anchor);
  return {
    period: (k) => ({ start: periodStartAt(start, 'MONTH', k), end: periodStartAt(start, 'MONTH', k + 1) }),
    current: periodContaining(start, 'MONTH', new Date()),
  };
}

/** [source, grantId, units] of each burn line, for compact assertions. */
export const lineSummary = (burn: Record<string, any>): Array<[string, string | null, string]> =>
  burn.lines.map((line: any) => [line.source, line.grantId, line.units]);
