/**
 * The customer dashboard and the internal grants page in Debian's Chromium, against a real
 * `npm run stack` (Hive Gateway CLI, Allotment, accounts subgraph, Vite dev server). A
 * product service records usage through the typed client; the open page's meter moves and
 * the 80 % notification appears without a reload. Screenshots: artifacts/screenshots/.
 */
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createAllotmentClient } from '../../src/client/index.js';
import { launchChromium, SCREENSHOTS } from '../support/browser.js';
import { uniqueDbName } from '../support/harness.js';
import { isAlive, type RunningStack, startStack } from '../support/stack.js';

let stack: RunningStack;
let browser: Awaited<ReturnType<typeof launchChromium>>;
const ACCOUNT = 'acct_1001'; // known to the accounts subgraph: "Acme API Co"

async function operator(query: string) {
  const response = await fetch(stack.info.gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.info.tokens.operator}` },
    body: JSON.stringify({ query }),
  });
  const body = (await response.json()) as any;
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

beforeAll(async () => {
  stack = await startStack({ STACK_DASHBOARD: '1', MONGODB_URI: inject('mongoUri'), MONGODB_DB: uniqueDbName('e2e') });
  await operator('mutation { defineFeature(input: { key: "api_calls", name: "API calls", type: METERED, unit: "call" }) { key } }');
  await operator(`mutation { publishPlan(input: { key: "starter", name: "Starter", currency: "USD", baseFee: "49",
    entitlements: [{ feature: "api_calls", included: "1000", enforcement: SOFT, overage: { unitPrice: "0.10", per: "100" } }] }) { key } }`);
  await operator(
    `mutation { upsertContract(input: { id: "ctr_1001", accountId: "${ACCOUNT}", planKey: "starter", startsAt: "2026-01-01T00:00:00Z" }) { id } }`,
  );
  browser = await launchChromium();
}, 180_000);
afterAll(async () => {
  await browser?.close();
  if (stack) {
    // Ctrl-C in a terminal: SIGINT to the whole process group, every part at once.
    const children = stack.children();
    expect(await stack.stop({ signal: 'SIGINT', group: true })).toBe(0);
    for (const pid of children) expect(isAlive(pid), `pid ${pid}`).toBe(false);
  }
}, 60_000);

const used = (page: Page) => page.locator('[data-testid="meter"][data-feature="api_calls"] [data-testid="used"]');

describe('customer dashboard', () => {
  it('moves the meter and shows the 80 % notification live as a service records usage', async () => {
    const page = await browser.context.newPage();
    await page.goto(stack.info.dashboardUrl!);
    await page.fill('#token', stack.info.tokens.customer);
    await page.click('button[type="submit"]');
    await expect.poll(() => page.locator('[data-testid="account"]').textContent(), { timeout: 20_000 }).toContain('Acme API Co');
    expect(await used(page).textContent()).toBe('0');
    const meter = page.locator('[data-testid="meter"][data-feature="api_calls"]');
    expect(await meter.locator('[data-testid="capacity"]').textContent()).toBe('1,000');
    expect(await meter.locator('[data-testid="period-end"]').textContent()).toMatch(/GMT$/);

    // A product service, through the gateway with the typed client.
    const service = createAllotmentClient({ url: stack.info.gatewayUrl, token: stack.info.tokens.operator });
    // Until the page's subscriptions are up at Allotment, a unit at a time.
    let units = 0;
    for (const deadline = Date.now() + 20_000; (await used(page).textContent()) === '0'; ) {
      if (Date.now() > deadline) throw new Error('the meter never moved');
      await service.record({ accountId: ACCOUNT, feature: 'api_calls', quantity: '1' });
      units += 1;
      await page.waitForTimeout(300);
    }
    await expect.poll(() => used(page).textContent(), { timeout: 10_000 }).toBe(String(units));

    await service.recordBatch([
      { accountId: ACCOUNT, feature: 'api_calls', quantity: '500' },
      { accountId: ACCOUNT, feature: 'api_calls', quantity: '320' },
    ]);
    await expect.poll(() => used(page).textContent(), { timeout: 10_000 }).toBe(String(820 + units));
    const notification = page.locator('[data-testid="notification"]').first();
    await notification.waitFor({ timeout: 10_000 });
    expect(await notification.textContent()).toContain('api_calls: 80 % of your allowance used');
    expect(await meter.getAttribute('class')).toContain('warn');
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard.png'), fullPage: true });
    await page.close();
  });
});

describe('internal grants page', () => {
  it('issues a grant with a reason, voids it, and shows the audit trail', async () => {
    const page = await browser.context.newPage();
    page.on('dialog', (dialog) => void dialog.accept('Issued twice by mistake'));
    await page.goto(`${stack.info.dashboardUrl}grants.html`);
    await page.fill('#token', stack.info.tokens.support);
    await page.fill('#account-id', ACCOUNT);
    await page.click('#lookup button[type="submit"]');
    await page.locator('#workspace').waitFor({ state: 'visible', timeout: 20_000 });

    await page.fill('#issue input[name="feature"]', 'api_calls');
    await page.fill('#issue input[name="amount"]', '500');
    await page.fill('#issue input[name="reason"]', 'Support ticket 4411');
    await page.click('#issue button[type="submit"]');
    const grant = page.locator('[data-testid="grant"]').first();
    await grant.waitFor({ timeout: 10_000 });
    expect(await grant.getAttribute('data-status')).toBe('ACTIVE');
    expect(await grant.textContent()).toContain('Support ticket 4411');

    await grant.locator('button', { hasText: 'Void' }).click();
    await expect.poll(() => grant.getAttribute('data-status'), { timeout: 10_000 }).toBe('VOIDED');
    const audit = (await page.locator('[data-testid="audit-entry"]').allTextContents()).join('\n');
    expect(audit).toContain('stack-support grant.issued');
    expect(audit).toContain('stack-support grant.voided');
    await page.screenshot({ path: join(SCREENSHOTS, 'grants.png'), fullPage: true });
    await page.close();
  });

  it('refuses a customer token', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${stack.info.dashboardUrl}grants.html`);
    await page.fill('#token', stack.info.tokens.customer);
    await page.fill('#account-id', ACCOUNT);
    await page.click('#lookup button[type="submit"]');
    const error = page.locator('[data-testid="error"]');
    await error.waitFor({ state: 'visible', timeout: 20_000 });
    expect(await error.textContent()).toContain('Refused');
    expect(await error.textContent()).toContain('FORBIDDEN');
    expect(await page.locator('#workspace').isHidden()).toBe(true);
    await page.screenshot({ path: join(SCREENSHOTS, 'grants-refused.png'), fullPage: true });
    await page.close();
  });
});
