import { useState } from 'preact/hooks';
import { get, post, registryDelete, repoPath, signedInAs } from '../api';
import { bytes, short, when } from '../format';
import { useAction, useEventFeed, useLoad } from '../hooks';
import { Problem } from '../ui';

interface Tag {
  tag: string;
  digest: string;
  pushed: number;
  media_type?: string;
  size?: number;
  total_size?: number;
  platforms?: string[];
  immutable?: string;
  scan?: { status: string; counts: Record<string, number> };
  signatures?: { notary: number; cosign: number; signed: boolean; policy_satisfied?: boolean };
}


interface Grant {
  kind: string;
  name: string;
  role: string;
}

const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];

function scanSummary(s: Tag['scan']): string {
  if (!s) return '';
  if (s.status !== 'completed') return s.status.replace('_', ' ');
  const parts = SEVERITIES.filter((k) => s.counts[k]).map((k) => `${s.counts[k]} ${k.toLowerCase()}`);
  return parts.length ? parts.join(', ') : 'no known vulnerabilities';
}

function signedSummary(s: Tag['signatures']): string {
  if (!s) return '';
  const by = [s.notary ? 'Notary' : '', s.cosign ? 'cosign' : ''].filter(Boolean).join(', ');
  const verdict = s.policy_satisfied === undefined ? '' : s.policy_satisfied ? ' (policy met)' : ' (policy not met)';
  return (by ? `signed: ${by}` : 'unsigned') + verdict;
}

// A repository: GET /api/v1/repositories/<name>/tags (tags newest first with size,
// platforms, scan summary and signatures; deletion for whoever may delete), its latest
// events, and its settings and permissions (changed by repository administrators).
export function Repository({ name }: { name: string }) {
  const base = `/api/v1/repositories/${repoPath(name)}`;
  const tags = useLoad(() => get<{ tags: Tag[]; may: string[] }>(`${base}/tags`, name, 'pull,push,delete'), [name]);
  const events = useEventFeed(`repository=${encodeURIComponent(name)}`, signedInAs() !== '', 100);
  const act = useAction(tags.reload);
  const mayDelete = tags.data?.may.includes('delete') ?? false;
  const remove = (t: Tag) => {
    if (!confirm(`Delete the tag ${name}:${t.tag}? The image stays until garbage collection if nothing else refers to it.`)) return;
    act.run(() => registryDelete(`/v2/${repoPath(name)}/manifests/${encodeURIComponent(t.tag)}`, name));
  };
  const recent = events.items.slice(0, 20);
  return (
    <section>
      <h1>{name}</h1>
      <Problem text={act.error || tags.error} />
      {tags.data && (
        <table tabIndex={0}>
          <caption>Tags</caption>
          <thead>
            <tr>
              <th scope="col">Tag</th><th scope="col">Digest</th><th scope="col">Platforms</th><th scope="col">Size</th>
              <th scope="col">Pushed</th><th scope="col">Vulnerabilities</th><th scope="col">Signatures</th><th scope="col">Immutable</th>
              {mayDelete && <th scope="col">Delete</th>}
            </tr>
          </thead>
          <tbody>
            {tags.data.tags.map((t) => (
              <tr key={t.tag}>
                <td><a href={`/ui/repositories/${repoPath(name)}/-/${encodeURIComponent(t.tag)}`}>{t.tag}</a></td>
                <td><code title={t.digest}>{short(t.digest)}</code></td>
                <td>{(t.platforms || []).join(', ')}</td>
                <td>{bytes(t.total_size ?? t.size)}</td>
                <td>{when(t.pushed)}</td>
                <td>{scanSummary(t.scan)}</td>
                <td>{signedSummary(t.signatures)}</td>
                <td>{t.immutable ? `yes (${t.immutable})` : ''}</td>
                {mayDelete && (
                  <td>
                    {t.immutable ? 'immutable' : (
                      <button type="button" class="small" onClick={() => remove(t)}>{`Delete ${t.tag}`}</button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {tags.data && tags.data.tags.length === 0 && <p>No tags.</p>}
      {signedInAs() && <Settings name={name} />}
      <h2 id="repo-events">Events</h2>
      <Problem text={events.error} />
      <ul class="plain" aria-labelledby="repo-events">
        {recent.map((e) => (
          <li key={e.seq}>
            <code>{e.time}</code> {e.type} {e.target.tag || short(e.target.digest || '')} by {e.actor || 'anonymous'}
          </li>
        ))}
      </ul>
      {events.loaded && recent.length === 0 && <p>No events.</p>}
    </section>
  );
}

// GET|PATCH /api/v1/repositories/<name> (visibility, description) and
// GET|PUT /api/v1/repositories/<name>/permissions[/users|teams/<who>] {"role"}.
function Settings({ name }: { name: string }) {
  const base = `/api/v1/repositories/${repoPath(name)}`;
  const settings = useLoad(() => get<{ public: boolean; description: string }>(base), [name]);
  const grants = useLoad(() => get<{ items: Grant[] }>(`${base}/permissions`).then((r) => r.items), [name]);
  const [form, setForm] = useState({ kind: 'users', who: '', role: 'read' });
  const act = useAction(settings.reload, grants.reload);

  const grant = (e: Event) => {
    e.preventDefault();
    act.run(() => post(`${base}/permissions/${form.kind}/${encodeURIComponent(form.who)}`, { role: form.role }, 'PUT'));
  };
  if (!settings.data) return null;
  return (
    <>
      <h2>Access</h2>
      <Problem text={act.error || grants.error} />
      <p>
        This repository is <strong>{settings.data.public ? 'public' : 'private'}</strong>.{' '}
        <button type="button" class="small" onClick={() => act.run(() => post(base, { public: !settings.data!.public }, 'PATCH'))}>
          {settings.data.public ? 'Make private' : 'Make public'}
        </button>
      </p>
      {settings.data.description && <p>{settings.data.description}</p>}
      <table tabIndex={0}>
        <caption>Permissions</caption>
        <thead><tr><th scope="col">Who</th><th scope="col">Kind</th><th scope="col">Role</th></tr></thead>
        <tbody>
          {(grants.data || []).map((g) => (
            <tr key={g.kind + g.name}><td>{g.name}</td><td>{g.kind}</td><td>{g.role}</td></tr>
          ))}
        </tbody>
      </table>
      <form class="filters" onSubmit={grant} aria-label="Grant a role">
        <div>
          <label for="grant-kind">To a</label>
          <select id="grant-kind" value={form.kind} onChange={(e) => setForm({ ...form, kind: (e.target as HTMLSelectElement).value })}>
            <option value="users">user</option>
            <option value="teams">team of the namespace</option>
          </select>
        </div>
        <div><label for="grant-who">Name</label><input id="grant-who" required value={form.who} onInput={(e) => setForm({ ...form, who: (e.target as HTMLInputElement).value })} /></div>
        <div>
          <label for="grant-role">Role</label>
          <select id="grant-role" value={form.role} onChange={(e) => setForm({ ...form, role: (e.target as HTMLSelectElement).value })}>
            {['none', 'read', 'write', 'admin'].map((r) => <option key={r} value={r}>{r}</option>)}
          </select>
        </div>
        <div><button type="submit">Set role</button></div>
      </form>
    </>
  );
}
