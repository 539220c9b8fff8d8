// The UI's only way to the core: its JSON API with the Docker token flow. A sign-in gets
// an access token and a refresh token (kept in memory only: never in storage, never in a
// URL); API calls carry `Authorization: Bearer`, so no cookie alone can change anything.
// Registry-scoped reads (tags, images, scans, signatures) use a token for that
// repository, asked with the refresh token and cached until it expires.

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

interface Token {
  token: string;
  expires: number; // ms since the epoch
}

let service = '';
let refreshToken = '';
let user = '';
let admin = false;
const tokens = new Map<string, Token>();
const listeners = new Set<() => void>();

export function signedInAs(): string {
  return user;
}

export function onSessionChange(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

async function learnService(): Promise<void> {
  if (service) return;
  const r = await fetch('/v2/');
  const challenge = r.headers.get('www-authenticate') || '';
  const m = /service="([^"]*)"/.exec(challenge);
  service = m ? m[1] : 'wharf';
}

async function tokenRequest(form: Record<string, string>, scopes: string[]): Promise<any> {
  const body = new URLSearchParams({ ...form, service, client_id: 'wharf-ui' });
  for (const s of scopes) body.append('scope', s);
  const r = await fetch('/auth/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body,
  });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, errorText(j) || 'sign-in failed');
  return j;
}

function remember(scope: string, j: any) {
  const ttl = typeof j.expires_in === 'number' ? j.expires_in : 60;
  tokens.set(scope, { token: j.token || j.access_token, expires: Date.now() + (ttl - 10) * 1000 });
}

export async function signIn(name: string, password: string): Promise<void> {
  await learnService();
  const j = await tokenRequest(
    { grant_type: 'password', username: name, password, access_type: 'offline' },
    ['registry:catalog:*'],
  );
  if (!j.refresh_token) throw new ApiError(500, 'the core gave no refresh token');
  refreshToken = j.refresh_token;
  user = name;
  tokens.clear();
  remember('', j);
  // Whether to show the administrators' pages (the core decides what they may do).
  admin = await get<{ admin: boolean }>('/api/v1/whoami').then((w) => w.admin === true, () => false);
  listeners.forEach((f) => f());
}

export function signedInAsAdmin(): boolean {
  return admin;
}

export function signOut() {
  refreshToken = '';
  user = '';
  admin = false;
  tokens.clear();
  listeners.forEach((f) => f());
}

// A token for scope ('' = the account's, for /api/v1), anonymous when signed out.
async function tokenFor(scope: string): Promise<string> {
  const have = tokens.get(scope);
  if (have && have.expires > Date.now()) return have.token;
  await learnService();
  if (!refreshToken) {
    if (!scope) return '';
    const r = await fetch(`/auth/token?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(scope)}`);
    if (!r.ok) return '';
    const j = await r.json();
    remember(scope, j);
    return tokens.get(scope)!.token;
  }
  const j = await tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken }, scope ? [scope] : []);
  remember(scope, j);
  return tokens.get(scope)!.token;
}

export function errorText(j: any): string {
  if (j && Array.isArray(j.errors) && j.errors.length) return String(j.errors[0].message || j.errors[0].code);
  if (j && typeof j.error === 'string') return j.error;
  return '';
}

// GET path as JSON; repo: the repository whose token it needs (else the account's), for
// actions (pull; "pull,push,delete" where the answer says what else the caller may do:
// the token endpoint grants what the account has of them).
export async function get<T = any>(path: string, repo?: string, actions = 'pull'): Promise<T> {
  const token = await tokenFor(repo ? `repository:${repo}:${actions}` : '');
  const r = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, errorText(j) || `${r.status} ${r.statusText}`);
  return j as T;
}

// POST (or DELETE) path with a JSON body, as the signed-in account.
export async function post<T = any>(path: string, body?: unknown, method = 'POST'): Promise<T> {
  const token = await tokenFor('');
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, errorText(j) || `${r.status} ${r.statusText}`);
  return j as T;
}

// DELETE of a registry path (a tag) with a token for repo's delete scope.
export async function registryDelete(path: string, repo: string): Promise<void> {
  const token = await tokenFor(`repository:${repo}:delete`);
  const r = await fetch(path, { method: 'DELETE', headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!r.ok) {
    const j = await r.json().catch(() => ({}));
    throw new ApiError(r.status, errorText(j) || `${r.status} ${r.statusText}`);
  }
}

export function repoPath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

// A server-sent event stream read with fetch (EventSource cannot send Authorization):
// calls onEvent with each event's data (parsed JSON) until the signal aborts.
export async function stream(path: string, onEvent: (data: any, id: string) => void, signal: AbortSignal): Promise<void> {
  const token = await tokenFor('');
  const r = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {}, signal });
  if (!r.ok || !r.body) throw new ApiError(r.status, `${r.status} ${r.statusText}`);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id = '';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) {
        try {
          onEvent(JSON.parse(data), id);
        } catch {
          /* not JSON: ignored */
        }
      }
    }
  }
}
