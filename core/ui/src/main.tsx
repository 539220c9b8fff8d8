// The web UI: a few pages, each a view of one part of the core's JSON API. Strings from
// the registry (names, labels, history lines, advisories) are only ever rendered as text.
import { render } from 'preact';
import { useLayoutEffect, useState } from 'preact/hooks';
import { onSessionChange, signedInAs, signedInAsAdmin, signOut } from './api';
import { Login } from './pages/login';
import { Repositories } from './pages/repositories';
import { Repository } from './pages/repository';
import { Image } from './pages/image';
import { Events } from './pages/events';
import { JobPage, Jobs } from './pages/jobs';
import { Audit } from './pages/audit';
import { Tokens } from './pages/tokens';
import { EdgePage, Fleet } from './pages/fleet';
import { Ldap, OrgPage, Orgs, Policies, Users, Webhooks } from './pages/admin';
import './app.css';

// Routes: /ui/, /ui/login, /ui/events, /ui/jobs, /ui/jobs/<id>, /ui/audit, /ui/tokens,
// /ui/fleet, /ui/fleet/<edge>, /ui/admin/{users,orgs,orgs/<org>,policies,webhooks,ldap},
// /ui/repositories/<name>,
// /ui/repositories/<name>/-/<tag|digest>
// ("-" cannot be a name component, so it separates the name from the reference).
type Route =
  | { page: 'repositories' }
  | { page: 'login' }
  | { page: 'events' }
  | { page: 'jobs' }
  | { page: 'audit' }
  | { page: 'tokens' }
  | { page: 'job'; id: string }
  | { page: 'fleet' }
  | { page: 'edge'; name: string }
  | { page: 'users' | 'orgs' | 'policies' | 'webhooks' | 'ldap' }
  | { page: 'org'; org: string }
  | { page: 'repository'; name: string }
  | { page: 'image'; name: string; ref: string };

function parse(path: string): Route {
  const p = decodeURIComponent(path.replace(/^\/ui\/?/, ''));
  if (p === 'login') return { page: 'login' };
  if (p === 'events') return { page: 'events' };
  if (p === 'jobs') return { page: 'jobs' };
  if (p === 'audit') return { page: 'audit' };
  if (p === 'tokens') return { page: 'tokens' };
  if (p.startsWith('jobs/')) return { page: 'job', id: p.slice(5) };
  if (p === 'fleet') return { page: 'fleet' };
  if (p.startsWith('fleet/')) return { page: 'edge', name: p.slice(6) };
  if (p.startsWith('admin/orgs/')) return { page: 'org', org: p.slice('admin/orgs/'.length) };
  if (p === 'admin' || p === 'admin/users') return { page: 'users' };
  if (p === 'admin/orgs' || p === 'admin/policies' || p === 'admin/webhooks' || p === 'admin/ldap') {
    return { page: p.slice(6) as 'orgs' | 'policies' | 'webhooks' | 'ldap' };
  }
  if (p.startsWith('repositories/')) {
    const rest = p.slice('repositories/'.length);
    const at = rest.indexOf('/-/');
    if (at >= 0) return { page: 'image', name: rest.slice(0, at), ref: rest.slice(at + 3) };
    return { page: 'repository', name: rest };
  }
  return { page: 'repositories' };
}

// The current route, and the App's way to hear of changes (listeners are attached at
// start-up, before anything renders, so no early click is lost).
const routeListeners = new Set<() => void>();
addEventListener('popstate', () => routeListeners.forEach((f) => f()));

export function navigate(to: string) {
  history.pushState(null, '', to);
  routeListeners.forEach((f) => f());
}

// Links go through the history API (no reload: the session lives in memory).
function onClick(e: MouseEvent) {
  const a = (e.target as HTMLElement).closest('a');
  if (!a || a.target || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/ui')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
}
document.addEventListener('click', onClick);

function App() {
  const [route, setRoute] = useState(parse(location.pathname));
  const [user, setUser] = useState(signedInAs());
  useLayoutEffect(() => {
    const change = () => setRoute(parse(location.pathname));
    routeListeners.add(change);
    change();  // a change before this ran
    const off = onSessionChange(() => setUser(signedInAs()));
    return () => {
      routeListeners.delete(change);
      off();
    };
  }, []);
  return (
    <>
      <header class="top">
        <a class="brand" href="/ui/">Wharf</a>
        <nav aria-label="Main">
          <a href="/ui/">Repositories</a> <a href="/ui/events">Events</a>
          {signedInAsAdmin() && (
            <>
              {' '}<a href="/ui/jobs">Jobs</a> <a href="/ui/audit">Audit</a> <a href="/ui/fleet">Fleet</a> <a href="/ui/admin">Admin</a>
            </>
          )}
        </nav>
        <div class="who">
          {user ? (
            <>
              <a href="/ui/tokens">{user}</a>{' '}
              <button type="button" onClick={() => { signOut(); navigate('/ui/login'); }}>Sign out</button>
            </>
          ) : (
            <a href="/ui/login">Sign in</a>
          )}
        </div>
      </header>
      <main id="main">
        {route.page === 'login' && <Login />}
        {route.page === 'events' && <Events key={user} />}
        {route.page === 'jobs' && <Jobs key={user} />}
        {route.page === 'audit' && <Audit key={user} />}
        {route.page === 'tokens' && <Tokens key={user} />}
        {route.page === 'fleet' && <Fleet key={user} />}
        {route.page === 'edge' && <EdgePage key={route.name + user} name={route.name} />}
        {route.page === 'users' && <Users key={user} />}
        {route.page === 'orgs' && <Orgs key={user} />}
        {route.page === 'org' && <OrgPage key={route.org + user} org={route.org} />}
        {route.page === 'policies' && <Policies key={user} />}
        {route.page === 'webhooks' && <Webhooks key={user} />}
        {route.page === 'ldap' && <Ldap key={user} />}
        {route.page === 'job' && <JobPage key={route.id + user} id={route.id} />}
        {route.page === 'repositories' && <Repositories key={user} />}
        {route.page === 'repository' && <Repository key={route.name + user} name={route.name} />}
        {route.page === 'image' && <Image key={route.name + route.ref + user} name={route.name} reference={route.ref} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
