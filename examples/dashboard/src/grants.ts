/**
 * The internal grants page for support: issue a grant with a reason, void one, read the
 * account's audit trail. It needs an internal token with grants:write and audit:read; a
 * customer token is refused by Allotment (FORBIDDEN), and the page says so.
 */
import { request, RequestError, show } from './graphql.js';

interface Grant {
  id: string;
  feature: string;
  amount: string;
  remaining: string;
  status: string;
  reason: string;
}
interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  targetId: string;
}

const ACCOUNT = `query Support($id: ID!) {
  account(id: $id) { grants(activeOnly: false) { id feature amount remaining status reason } }
  auditLog(accountId: $id, first: 20) { edges { node { id at actor action targetId } } }
}`;
const ISSUE = `mutation Issue($input: IssueGrantInput!) { issueGrant(input: $input) { id } }`;
const VOID = `mutation Void($id: ID!, $reason: String!) { voidGrant(id: $id, reason: $reason) { id status } }`;

const $ = <T extends HTMLElement>(selector: string) => document.querySelector<T>(selector)!;
const error = $('#error');
let session: { token: string; accountId: string } | undefined;

function describe(failure: unknown): string {
  if (failure instanceof RequestError && failure.errors.some((e) => ['FORBIDDEN', 'UNAUTHENTICATED'].includes(e.extensions?.code ?? ''))) {
    return `Refused: this page needs an internal support token (grants:write, audit:read). ${failure.message}`;
  }
  return failure instanceof Error ? failure.message : String(failure);
}

function cell(text: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

async function refresh(): Promise<void> {
  if (!session) return;
  const data = await request<{ account: { grants: Grant[] } | null; auditLog: { edges: Array<{ node: AuditEntry }> } }>(
    session.token,
    ACCOUNT,
    { id: session.accountId },
  );
  const rows = (data.account?.grants ?? []).map((grant) => {
    const row = document.createElement('tr');
    row.dataset.testid = 'grant';
    row.dataset.status = grant.status;
    row.append(cell(grant.feature), cell(grant.amount), cell(grant.remaining), cell(grant.status), cell(grant.reason));
    const actions = document.createElement('td');
    if (grant.status === 'ACTIVE' || grant.status === 'PENDING') {
      const button = document.createElement('button');
      button.textContent = 'Void';
      button.addEventListener('click', () => void voidGrant(grant.id));
      actions.append(button);
    }
    row.append(actions);
    return row;
  });
  $('[data-testid="grants"] tbody').replaceChildren(...rows);
  $('#audit').replaceChildren(
    ...data.auditLog.edges.map(({ node }) => {
      const item = document.createElement('li');
      item.dataset.testid = 'audit-entry';
      item.textContent = `${new Date(node.at).toISOString()} ${node.actor} ${node.action} ${node.targetId}`;
      return item;
    }),
  );
}

async function voidGrant(id: string): Promise<void> {
  const reason = window.prompt('Why void this grant?');
  if (!session || !reason) return;
  try {
    await request(session.token, VOID, { id, reason });
    await refresh();
  } catch (failure) {
    show(error, describe(failure));
  }
}

$<HTMLFormElement>('#lookup').addEventListener('submit', (event) => {
  event.preventDefault();
  session = { token: $<HTMLTextAreaElement>('#token').value.trim(), accountId: $<HTMLInputElement>('#account-id').value.trim() };
  refresh().then(
    () => {
      show(error, null);
      $('#workspace').hidden = false;
    },
    (failure: unknown) => {
      $('#workspace').hidden = true;
      show(error, describe(failure));
    },
  );
});

$<HTMLFormElement>('#issue').addEventListener('submit', (event) => {
  event.preventDefault();
  if (!session) return;
  const form = new FormData(event.target as HTMLFormElement);
  const expiresAt = String(form.get('expiresAt') ?? '');
  const input = {
    accountId: session.accountId,
    feature: String(form.get('feature')),
    amount: String(form.get('amount')),
    reason: String(form.get('reason')),
    idempotencyKey: crypto.randomUUID(),
    ...(expiresAt ? { expiresAt: new Date(`${expiresAt}T00:00:00Z`).toISOString() } : {}),
  };
  request(session.token, ISSUE, { input }).then(
    () => refresh().then(() => show(error, null)),
    (failure: unknown) => show(error, describe(failure)),
  );
});
