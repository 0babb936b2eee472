/**
 * The customer dashboard: a meter per entitlement (used, capacity, overage, period end),
 * kept live by `entitlementUpdated`, and `usageAlerts` shown as notifications.
 */
import { claims, liveClient, RequestError, request, show } from './graphql.js';

interface Entitlement {
  feature: { key: string; name: string; unit: string | null };
  used: string;
  capacity: string | null;
  overage: string;
  percentUsed: number | null;
  periodEnd: string | null;
  hasAccess: boolean;
}

const ENTITLEMENT_FIELDS = 'feature { key name unit } used capacity overage percentUsed periodEnd hasAccess';
const DASHBOARD = `query Dashboard($id: ID!) { account(id: $id) { id name entitlements { ${ENTITLEMENT_FIELDS} } } }`;
const UPDATES = `subscription Balances($id: ID!) { entitlementUpdated(accountId: $id) { entitlement { ${ENTITLEMENT_FIELDS} } } }`;
const ALERTS = `subscription Alerts($id: ID!) { usageAlerts(accountId: $id) { id feature threshold used capacity percentUsed triggeredAt } }`;

const $ = <T extends HTMLElement>(selector: string) => document.querySelector<T>(selector)!;
const meters = $('#meters');
const notifications = $('#notifications');
const error = $('#error');

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const number = (value: string | null) => (value === null ? '∞' : Number(value).toLocaleString('en-US', { maximumFractionDigits: 6 }));

function renderMeter(entitlement: Entitlement): void {
  const id = `meter-${entitlement.feature.key}`;
  let card = document.getElementById(id);
  if (!card) {
    card = document.createElement('article');
    card.id = id;
    card.className = 'meter';
    card.dataset.testid = 'meter';
    card.dataset.feature = entitlement.feature.key;
    meters.append(card);
  }
  const percent = entitlement.percentUsed ?? 0;
  card.classList.toggle('warn', percent >= 80);
  card.innerHTML = `
    <h2>${escapeHtml(entitlement.feature.name)}</h2>
    <progress max="100" value="${Math.min(100, percent)}"></progress>
    <dl>
      <dt>Used</dt><dd data-testid="used">${number(entitlement.used)}</dd>
      <dt>Capacity</dt><dd data-testid="capacity">${number(entitlement.capacity)}</dd>
      <dt>Overage</dt><dd data-testid="overage">${number(entitlement.overage)}</dd>
      <dt>Period ends</dt><dd data-testid="period-end">${entitlement.periodEnd ? new Date(entitlement.periodEnd).toUTCString() : '—'}</dd>
    </dl>
    <p class="percent" data-testid="percent">${entitlement.percentUsed === null ? 'unlimited' : `${percent.toFixed(1)} % used`}</p>`;
}

function notify(alert: { feature: string; threshold: number; used: string; capacity: string }): void {
  const note = document.createElement('div');
  note.className = 'notification';
  note.dataset.testid = 'notification';
  note.textContent = `${alert.feature}: ${alert.threshold} % of your allowance used (${number(alert.used)} of ${number(alert.capacity)})`;
  notifications.prepend(note);
}

async function signIn(token: string): Promise<void> {
  const accountId = claims(token).account_id;
  if (typeof accountId !== 'string') {
    show(error, 'This is not a customer token (it names no account_id).');
    return;
  }
  try {
    const data = await request<{ account: { name: string; entitlements: Entitlement[] } | null }>(token, DASHBOARD, { id: accountId });
    if (!data.account) throw new Error(`No account ${accountId}`);
    show(error, null);
    $('#sign-in').hidden = true;
    $('#account').textContent = `${data.account.name} (${accountId})`;
    for (const entitlement of data.account.entitlements.filter((e) => e.hasAccess)) renderMeter(entitlement);
  } catch (failure) {
    show(error, failure instanceof RequestError ? failure.message : String(failure));
    return;
  }
  const live = liveClient(token);
  const onError = (failure: unknown) =>
    show(error, `Live updates stopped: ${failure instanceof Error ? failure.message : JSON.stringify(failure)}`);
  live.subscribe<{ entitlementUpdated: { entitlement: Entitlement } }>(
    { query: UPDATES, variables: { id: accountId } },
    { next: ({ data }) => data && renderMeter(data.entitlementUpdated.entitlement), error: onError, complete: () => undefined },
  );
  live.subscribe<{ usageAlerts: Parameters<typeof notify>[0] }>(
    { query: ALERTS, variables: { id: accountId } },
    { next: ({ data }) => data && notify(data.usageAlerts), error: onError, complete: () => undefined },
  );
  document.body.dataset.live = 'subscribed';
}

$<HTMLFormElement>('#sign-in').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $<HTMLTextAreaElement>('#token').value.trim();
  sessionStorage.setItem('allotment-token', token);
  void signIn(token);
});
const saved = sessionStorage.getItem('allotment-token');
if (saved) void signIn(saved);
