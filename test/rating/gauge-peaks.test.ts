/**
 * Rating a gauge (R16): the invoice bills the period's peak level beyond included, and
 * finalising freezes it like any usage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { RATING_ENV, finalizeInvoiceOk, invoicePreviewOk, table } from '../support/rating-fixtures.js';
import { key, recordUsageOk } from '../support/usage-fixtures.js';
import { defineSeats, gaugeAccount, setUsageOk } from '../usage/gauge-fixtures.js';

let app: TestInstance;
beforeAll(async () => {
  app = await startTestInstance({ env: RATING_ENV });
  await defineSeats(app);
});
afterAll(() => app.stop());

const MARCH = '2026-03-01T00:00:00.000Z';

describe('a gauge on the invoice (R16)', () => {
  it('bills a seat peak of 31 against 25 included as 6 seats, and finalising freezes it', async () => {
    const { accountId, contractId } = await gaugeAccount(app, { included: '25', enforcement: 'SOFT', unitPrice: '12.5' });
    await setUsageOk(app, { accountId, feature: 'seats', value: '31', idempotencyKey: key(), timestamp: '2026-03-03T09:00:00Z' });
    await setUsageOk(app, { accountId, feature: 'seats', value: '24', idempotencyKey: key(), timestamp: '2026-03-04T09:00:00Z' });
    const preview = await invoicePreviewOk(app, contractId, MARCH);
    expect(table(preview)).toEqual([['OVERAGE', 'seats', '6', '12.50', '75.00']]);
    expect(preview.total).toBe('75.00');

    const final = await finalizeInvoiceOk(app, contractId, MARCH);
    expect(final).toMatchObject({ final: true, total: '75.00', pendingCorrections: [] });
    // A change now is not re-rated into the closed period: the invoice stays as frozen.
    await recordUsageOk(app, { accountId, feature: 'seats', quantity: '10', idempotencyKey: key(), timestamp: '2026-03-20T00:00:00Z' });
    expect(await invoicePreviewOk(app, contractId, MARCH)).toMatchObject({ final: true, total: '75.00' });
  });

  it('refuses reconcileUsage on a gauge with a clear BAD_USER_INPUT', async () => {
    const { accountId } = await gaugeAccount(app);
    await recordUsageOk(app, { accountId, feature: 'seats', quantity: '1', idempotencyKey: key() });
    const response = await app.graphql(
      `mutation ($accountId: ID!) { reconcileUsage(accountId: $accountId, feature: "seats", periodStart: "2026-03-01T00:00:00Z") { drift } }`,
      { accountId },
    );
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors![0]!.message).toContain('GAUGE');
  });
});
