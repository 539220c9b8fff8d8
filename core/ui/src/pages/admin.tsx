// Administration, each section a view of its part of /api/v1 (administrators; the core
// refuses everyone else, and the page shows its refusal): users, organizations with
// their members and teams, policies (retention, immutability, scanning, trust),
// webhooks with their delivery log, and the LDAP directory.
import { useState } from 'preact/hooks';
import { get, post } from '../api';
import { message, useAction, useLoad, usePaged } from '../hooks';
import { Field, Problem } from '../ui';

export function AdminNav() {
  return (
    <nav aria-label="Administration" class="subnav">
      <a href="/ui/admin/users">Users</a> <a href="/ui/admin/orgs">Organizations</a> <a href="/ui/admin/policies">Policies</a>{' '}
      <a href="/ui/admin/webhooks">Webhooks</a> <a href="/ui/admin/ldap">LDAP</a>
    </nav>
  );
}

interface User {
  name: string;
  email: string;
  admin: boolean;
  disabled: boolean;
  source?: string;
  created?: number;
}

// GET|POST /api/v1/users, PATCH|DELETE /api/v1/users/<name>.
export function Users() {
  const list = usePaged<User, string>(async (after) => {
    const r = await get<{ items: User[]; next?: string }>(`/api/v1/users?limit=100${after ? '&after=' + encodeURIComponent(after) : ''}`);
    return { items: r.items, next: r.next ?? null };
  }, []);
  const act = useAction(list.reload);
  const [form, setForm] = useState({ name: '', password: '', email: '', admin: false });
  const path = (u: string) => `/api/v1/users/${encodeURIComponent(u)}`;
  const create = async (e: Event) => {
    e.preventDefault();
    if (await act.run(() => post('/api/v1/users', form))) setForm({ name: '', password: '', email: '', admin: false });
  };
  return (
    <section>
      <h1>Users</h1>
      <AdminNav />
      <Problem text={act.error || list.error} />
      <table tabIndex={0}>
        <caption>Users</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Email</th><th scope="col">Source</th><th scope="col">Administrator</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          {list.items.map((u) => (
            <tr key={u.name}>
              <td>{u.name}</td><td>{u.email}</td><td>{u.source || 'local'}</td><td>{u.admin ? 'yes' : ''}</td>
              <td>{u.disabled ? 'disabled' : 'active'}</td>
              <td class="actions">
                <button type="button" class="small" aria-label={`${u.disabled ? 'Enable' : 'Disable'} ${u.name}`}
                        onClick={() => act.run(() => post(path(u.name), { disabled: !u.disabled }, 'PATCH'))}>
                  {u.disabled ? 'Enable' : 'Disable'}
                </button>{' '}
                <button type="button" class="small" aria-label={u.admin ? `Revoke administrator from ${u.name}` : `Make ${u.name} administrator`}
                        onClick={() => act.run(() => post(path(u.name), { admin: !u.admin }, 'PATCH'))}>
                  {u.admin ? 'Revoke administrator' : 'Make administrator'}
                </button>{' '}
                <button type="button" class="small" aria-label={`Delete ${u.name}`}
                        onClick={() => confirm(`Delete the user ${u.name}?`) && act.run(() => post(path(u.name), undefined, 'DELETE'))}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.next && <button type="button" disabled={list.loading} onClick={list.more}>More</button>}
      <h2>New user</h2>
      <form class="filters" onSubmit={create}>
        <Field id="user-name" label="User name" required value={form.name} onInput={(v) => setForm({ ...form, name: v })} />
        <Field id="user-password" label="Password (8 characters or more)" type="password" required value={form.password} onInput={(v) => setForm({ ...form, password: v })} />
        <Field id="user-email" label="Email" type="email" value={form.email} onInput={(v) => setForm({ ...form, email: v })} />
        <div>
          <label for="user-admin">Administrator</label>
          <input id="user-admin" type="checkbox" class="check" checked={form.admin} onChange={(e) => setForm({ ...form, admin: (e.target as HTMLInputElement).checked })} />
        </div>
        <div><button type="submit">Create user</button></div>
      </form>
    </section>
  );
}

// GET|POST /api/v1/orgs.
export function Orgs() {
  const list = usePaged<string, string>(async (after) => {
    const r = await get<{ items: string[]; next?: string }>(`/api/v1/orgs?limit=100${after ? '&after=' + encodeURIComponent(after) : ''}`);
    return { items: r.items, next: r.next ?? null };
  }, []);
  const act = useAction(list.reload);
  const [name, setName] = useState('');
  return (
    <section>
      <h1>Organizations</h1>
      <AdminNav />
      <Problem text={act.error || list.error} />
      <ul>
        {list.items.map((o) => <li key={o}><a href={`/ui/admin/orgs/${encodeURIComponent(o)}`}>{o}</a></li>)}
      </ul>
      {list.next && <button type="button" disabled={list.loading} onClick={list.more}>More</button>}
      <form class="filters" onSubmit={async (e) => { e.preventDefault(); if (await act.run(() => post('/api/v1/orgs', { name }))) setName(''); }}>
        <Field id="org-name" label="New organization" required value={name} onInput={setName} />
        <div><button type="submit">Create organization</button></div>
      </form>
    </section>
  );
}

// GET /api/v1/orgs/<org> (members, teams); PUT|DELETE .../members/<user>; POST .../teams,
// DELETE .../teams/<team>; GET|PUT|DELETE .../teams/<team>/members[/<user>].
export function OrgPage({ org }: { org: string }) {
  const base = `/api/v1/orgs/${encodeURIComponent(org)}`;
  const info = useLoad(() => get<{ members: { name: string; role: string }[]; teams: string[] }>(base), [org]);
  const act = useAction(info.reload);
  const [member, setMember] = useState({ name: '', role: 'member' });
  const [team, setTeam] = useState('');
  return (
    <section>
      <h1>Organization {org}</h1>
      <AdminNav />
      <Problem text={act.error || info.error} />
      {info.data && (
        <>
          <table tabIndex={0}>
            <caption>Members</caption>
            <thead><tr><th scope="col">User</th><th scope="col">Role</th><th scope="col">Actions</th></tr></thead>
            <tbody>
              {info.data.members.map((m) => (
                <tr key={m.name}>
                  <td>{m.name}</td><td>{m.role}</td>
                  <td><button type="button" class="small" onClick={() => act.run(() => post(`${base}/members/${encodeURIComponent(m.name)}`, undefined, 'DELETE'))}>{`Remove ${m.name}`}</button></td>
                </tr>
              ))}
            </tbody>
          </table>
          <form class="filters" aria-label="Add a member" onSubmit={async (e) => {
            e.preventDefault();
            if (await act.run(() => post(`${base}/members/${encodeURIComponent(member.name)}`, { role: member.role }, 'PUT'))) setMember({ name: '', role: 'member' });
          }}>
            <Field id="member-name" label="User" required value={member.name} onInput={(v) => setMember({ ...member, name: v })} />
            <div>
              <label for="member-role">Role</label>
              <select id="member-role" value={member.role} onChange={(e) => setMember({ ...member, role: (e.target as HTMLSelectElement).value })}>
                <option value="member">member</option><option value="owner">owner</option>
              </select>
            </div>
            <div><button type="submit">Add or change member</button></div>
          </form>
          <h2>Teams</h2>
          {info.data.teams.map((t) => <Team key={t} org={org} team={t} onChange={info.reload} />)}
          <form class="filters" aria-label="Create a team" onSubmit={async (e) => {
            e.preventDefault();
            if (await act.run(() => post(`${base}/teams`, { name: team }))) setTeam('');
          }}>
            <Field id="team-name" label="New team" required value={team} onInput={setTeam} />
            <div><button type="submit">Create team</button></div>
          </form>
        </>
      )}
    </section>
  );
}

function Team({ org, team, onChange }: { org: string; team: string; onChange: () => void }) {
  const base = `/api/v1/orgs/${encodeURIComponent(org)}/teams/${encodeURIComponent(team)}`;
  const members = useLoad(() => get<{ items: string[] }>(`${base}/members`).then((r) => r.items), [org, team]);
  const act = useAction(members.reload);
  const [user, setUser] = useState('');
  const id = `team-${team}`;
  return (
    <div class="card">
      <h3 id={id}>{team}</h3>
      <Problem text={act.error || members.error} />
      <ul aria-labelledby={id}>
        {(members.data || []).map((m) => (
          <li key={m}>{m} <button type="button" class="small" onClick={() => act.run(() => post(`${base}/members/${encodeURIComponent(m)}`, undefined, 'DELETE'))}>{`Remove ${m} from ${team}`}</button></li>
        ))}
      </ul>
      <form class="filters" aria-label={`Add to ${team}`} onSubmit={async (e) => {
        e.preventDefault();
        if (await act.run(() => post(`${base}/members/${encodeURIComponent(user)}`, undefined, 'PUT'))) setUser('');
      }}>
        <Field id={`${id}-user`} label={`Add a user to ${team}`} required value={user} onInput={setUser} />
        <div>
          <button type="submit">Add</button>{' '}
          <button type="button" onClick={() => confirm(`Delete the team ${team}?`) && act.run(async () => { await post(base, undefined, 'DELETE'); onChange(); })}>{`Delete team ${team}`}</button>
        </div>
      </form>
    </div>
  );
}

interface Policy {
  scope: string;
  [key: string]: unknown;
}

function policySummary(p: Policy): string {
  const parts: string[] = [];
  const imm = p.immutable as string[] | undefined;
  if (imm && imm.length) parts.push(`immutable tags: ${imm.join(', ')}`);
  const ret = p.retention as { match?: string; keep_last?: number; keep_days?: number } | undefined;
  if (ret) parts.push(`retention: ${ret.match || '*'}${ret.keep_last !== undefined ? `, keep last ${ret.keep_last}` : ''}${ret.keep_days !== undefined ? `, keep ${ret.keep_days} days` : ''}`);
  const scan = p.scan as { on_push?: boolean; block_severity?: string; exemptions?: unknown[] } | undefined;
  if (scan?.block_severity) parts.push(`pulls blocked at ${scan.block_severity} with a fix${scan.exemptions?.length ? ` (${scan.exemptions.length} exemptions)` : ''}`);
  if (scan?.on_push !== undefined) parts.push(`scan on push: ${scan.on_push ? 'yes' : 'no'}`);
  const trust = p.trust as { require?: string } | undefined;
  if (trust?.require) parts.push(`signatures required: ${trust.require}`);
  return parts.join('; ');
}

// GET /api/v1/policies; PUT|DELETE /api/v1/policies/<scope> (the core names a bad field).
export function Policies() {
  const list = useLoad(() => get<{ items: Policy[] }>('/api/v1/policies').then((r) => r.items), []);
  const act = useAction(list.reload);
  const [scope, setScope] = useState('');
  const [text, setText] = useState('{\n  "immutable": ["v*"],\n  "retention": {"match": "*", "keep_last": 10}\n}');
  const path = (s: string) => `/api/v1/policies/${s.split('/').map(encodeURIComponent).join('/')}`;
  const save = async (e: Event) => {
    e.preventDefault();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      return act.run(() => Promise.reject(new Error(`not JSON: ${message(err)}`)));
    }
    return act.run(() => post(path(scope), body, 'PUT'));
  };
  return (
    <section>
      <h1>Policies</h1>
      <AdminNav />
      <Problem text={act.error || list.error} />
      <table tabIndex={0}>
        <caption>Policies by scope (a repository, or a namespace as team/*)</caption>
        <thead><tr><th scope="col">Scope</th><th scope="col">What it does</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          {(list.data || []).map((p) => (
            <tr key={p.scope}>
              <td>{p.scope}</td><td>{policySummary(p)}</td>
              <td class="actions">
                <button type="button" class="small" onClick={() => { const { scope: s, ...rest } = p; setScope(s); setText(JSON.stringify(rest, null, 2)); }}>{`Edit ${p.scope}`}</button>{' '}
                <button type="button" class="small" onClick={() => act.run(() => post(path(p.scope), undefined, 'DELETE'))}>{`Remove ${p.scope}`}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Set a policy</h2>
      <form onSubmit={save}>
        <Field id="policy-scope" label="Scope" required placeholder="team/* or team/app" value={scope} onInput={setScope} />
        <label for="policy-body">Policy (JSON: immutable, retention, scan, trust)</label>
        <textarea id="policy-body" rows={10} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
        <div><button type="submit">Save policy</button></div>
      </form>
    </section>
  );
}

interface Hook {
  id: string;
  scope: string;
  url: string;
  events: string[];
  has_secret: boolean;
  enabled: boolean;
  created_by: string;
  created_at: string;
}

interface Delivery {
  delivery: string;
  attempt: number;
  status: number;
  outcome: string;
  events: number;
  duration_ms: number;
  time: string;
  error?: string;
}

// GET|POST /api/v1/webhooks, PATCH|DELETE .../<id>, POST .../<id>/test, GET .../deliveries.
export function Webhooks() {
  const list = useLoad(() => get<{ webhooks: Hook[] }>('/api/v1/webhooks').then((r) => r.webhooks), []);
  const act = useAction(list.reload);
  const [form, setForm] = useState({ scope: '', url: '', events: 'tag.*', secret: '' });
  const [open, setOpen] = useState('');
  const create = async (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = { scope: form.scope, url: form.url, events: form.events.split(',').map((s) => s.trim()).filter(Boolean) };
    if (form.secret) body.secret = form.secret;
    if (await act.run(() => post('/api/v1/webhooks', body))) setForm({ scope: '', url: '', events: 'tag.*', secret: '' });
  };
  const path = (id: string) => `/api/v1/webhooks/${encodeURIComponent(id)}`;
  return (
    <section>
      <h1>Webhooks</h1>
      <AdminNav />
      <Problem text={act.error || list.error} />
      <table tabIndex={0}>
        <caption>Webhooks</caption>
        <thead><tr><th scope="col">Scope</th><th scope="col">URL</th><th scope="col">Events</th><th scope="col">Signed</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          {(list.data || []).map((h) => (
            <tr key={h.id}>
              <td>{h.scope}</td><td><code>{h.url}</code></td><td>{h.events.join(', ')}</td><td>{h.has_secret ? 'yes' : 'no'}</td>
              <td>{h.enabled ? 'enabled' : 'disabled'}</td>
              <td class="actions">
                <button type="button" class="small" onClick={() => setOpen(open === h.id ? '' : h.id)} aria-expanded={open === h.id} aria-label={`Deliveries of ${h.url}`}>Deliveries</button>{' '}
                <button type="button" class="small" onClick={() => act.run(() => post(`${path(h.id)}/test`))} aria-label={`Test ${h.url}`}>Test</button>{' '}
                <button type="button" class="small" onClick={() => act.run(() => post(path(h.id), { enabled: !h.enabled }, 'PATCH'))} aria-label={`${h.enabled ? 'Disable' : 'Enable'} ${h.url}`}>{h.enabled ? 'Disable' : 'Enable'}</button>{' '}
                <button type="button" class="small" onClick={() => act.run(() => post(path(h.id), undefined, 'DELETE'))} aria-label={`Delete ${h.url}`}>Delete</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {open && <Deliveries id={open} />}
      <h2>New webhook</h2>
      <form class="filters" onSubmit={create}>
        <Field id="hook-scope" label="Scope" required placeholder="team/* or team/app" value={form.scope} onInput={(v) => setForm({ ...form, scope: v })} />
        <Field id="hook-url" label="URL" type="url" required placeholder="https://ci.example.com/hook" value={form.url} onInput={(v) => setForm({ ...form, url: v })} />
        <Field id="hook-events" label="Events (comma-separated, patterns)" value={form.events} onInput={(v) => setForm({ ...form, events: v })} />
        <Field id="hook-secret" label="Secret (HMAC-SHA256)" type="password" value={form.secret} onInput={(v) => setForm({ ...form, secret: v })} />
        <div><button type="submit">Create webhook</button></div>
      </form>
    </section>
  );
}

function Deliveries({ id }: { id: string }) {
  const list = useLoad(() => get<{ deliveries: Delivery[] }>(`/api/v1/webhooks/${encodeURIComponent(id)}/deliveries?limit=50`).then((r) => r.deliveries), [id]);
  return (
    <>
      <Problem text={list.error} />
      <table tabIndex={0}>
        <caption>Deliveries, newest first <button type="button" class="small" onClick={list.reload}>Refresh</button></caption>
        <thead><tr><th scope="col">Time</th><th scope="col">Delivery</th><th scope="col">Attempt</th><th scope="col">Events</th><th scope="col">HTTP status</th><th scope="col">Outcome</th><th scope="col">Took</th></tr></thead>
        <tbody>
          {(list.data || []).map((d) => (
            <tr key={d.delivery + d.attempt}>
              <td>{d.time}</td><td><code>{d.delivery}</code></td><td>{d.attempt}</td><td>{d.events}</td><td>{d.status || ''}</td>
              <td>{d.outcome}{d.error ? `: ${d.error}` : ''}</td><td>{d.duration_ms} ms</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && list.data.length === 0 && <p>No deliveries yet.</p>}
    </>
  );
}

// GET|PUT /api/v1/ldap (the bind password is write-only), POST .../test, POST .../sync.
export function Ldap() {
  const current = useLoad(() => get<Record<string, unknown>>('/api/v1/ldap'), []);
  const [edits, setEdits] = useState<Record<string, string | boolean>>({});
  const [report, setReport] = useState('');
  const act = useAction(current.reload);
  const config = current.data || {};
  const fields = ['url', 'bind_dn', 'user_base', 'user_filter', 'user_attr', 'email_attr', 'group_base', 'group_filter',
    'group_name_attr', 'group_member_attr', 'ca_file', 'sync_interval_seconds', 'timeout_seconds'];
  const value = (k: string) => (k in edits ? edits[k] : config[k] ?? '');
  const save = async (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = { ...config };
    for (const [k, v] of Object.entries(edits)) body[k] = typeof config[k] === 'number' ? Number(v) : v;
    if (typeof body.team_map === 'string') {
      try {
        body.team_map = JSON.parse(body.team_map as string);
      } catch (err) {
        return act.run(() => Promise.reject(new Error(`team map: not JSON: ${message(err)}`)));
      }
    }
    if (!body.bind_password) delete body.bind_password;
    if (await act.run(() => post('/api/v1/ldap', body, 'PUT'))) setEdits({});
  };
  return (
    <section>
      <h1>LDAP directory</h1>
      <AdminNav />
      <Problem text={act.error || current.error} />
      <form onSubmit={save}>
        <div class="filters">
          {fields.map((k) => (
            <Field key={k} id={`ldap-${k}`} label={k.replace(/_/g, ' ')} value={String(value(k))} onInput={(v) => setEdits({ ...edits, [k]: v })} />
          ))}
          <Field id="ldap-bind_password" label="bind password (unchanged when empty)" type="password" value={String(edits.bind_password || '')} onInput={(v) => setEdits({ ...edits, bind_password: v })} />
        </div>
        <label for="ldap-team_map">team map (JSON: directory group to org/team)</label>
        <textarea id="ldap-team_map" rows={4} value={String('team_map' in edits ? edits.team_map : JSON.stringify(config.team_map ?? {}, null, 2))}
                  onInput={(e) => setEdits({ ...edits, team_map: (e.target as HTMLTextAreaElement).value })} />
        {['enabled', 'start_tls', 'insecure_skip_verify'].map((k) => (
          <div key={k}>
            <label for={`ldap-${k}`}>{k.replace(/_/g, ' ')}</label>
            <input id={`ldap-${k}`} type="checkbox" class="check" checked={Boolean(value(k))} onChange={(e) => setEdits({ ...edits, [k]: (e.target as HTMLInputElement).checked })} />
          </div>
        ))}
        <button type="submit">Save settings</button>{' '}
        <button type="button" onClick={() => act.run(async () => setReport(JSON.stringify(await post('/api/v1/ldap/test'))))}>Test connection</button>{' '}
        <button type="button" onClick={() => act.run(async () => setReport(JSON.stringify(await post('/api/v1/ldap/sync'), null, 2)))}>Sync now</button>
      </form>
      {report && <pre class="log" aria-live="polite">{report}</pre>}
      <p>Last syncs: the <a href="/ui/jobs">jobs</a> of kind ldap-sync, and the <a href="/ui/audit">audit log</a> (action ldap.sync).</p>
    </section>
  );
}
