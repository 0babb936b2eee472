/**
 * The operations the product-service client sends. graphql-codegen reads them from here
 * (the GraphQL comment tags) and writes their types into generated.ts (npm run generate).
 */

export const RECEIPT_FRAGMENT = /* GraphQL */ `
  fragment Receipt on UsageReceipt {
    idempotencyKey
    status
    originalStatus
    reason
    accountId
    feature
    quantity
    timestamp
    late
    retryAfter
  }
`;

export const CHECK_ENTITLEMENT = /* GraphQL */ `
  query CheckEntitlement($accountId: ID!, $feature: ID!, $requestedUnits: Decimal, $properties: JSON) {
    checkEntitlement(accountId: $accountId, feature: $feature, requestedUnits: $requestedUnits, properties: $properties) {
      allowed
      reason
      accountId
      feature
      requested
      used
      capacity
      remaining
      enforcement
      overageUnits
      periodStart
      periodEnd
      retryAfter
    }
  }
`;

export const RECORD_USAGE = /* GraphQL */ `
  mutation RecordUsage($input: UsageEventInput!) {
    recordUsage(input: $input) {
      ...Receipt
    }
  }
  ${RECEIPT_FRAGMENT}
`;

export const RECORD_USAGE_BATCH = /* GraphQL */ `
  mutation RecordUsageBatch($events: [UsageEventInput!]!) {
    recordUsageBatch(events: $events) {
      accepted
      duplicates
      rejected
      receipts {
        ...Receipt
      }
    }
  }
  ${RECEIPT_FRAGMENT}
`;
