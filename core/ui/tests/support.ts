// A real wharf-core for the browser tests: started on 127.0.0.1 with port 0 and a temp
// data directory (token auth, a known administrator password), and images pushed to it
// over the registry API as a client would.
import { spawn, ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const ADMIN_PASSWORD = 'ui-admin-password';

export class Core {
  proc!: ChildProcess;
  dir = mkdtempSync(join(tmpdir(), 'wharf-ui-'));
  url = '';

  // The vulnerability database the core imports at start: a directory of OSV files.
  osvDir = join(this.dir, 'osv');

  async start(): Promise<void> {
    const bin = process.env.WHARF_CORE_BIN || '../../build/core/wharf-core';
    const portFile = join(this.dir, 'port');
    mkdirSync(this.osvDir, { recursive: true });
    writeFileSync(join(this.osvDir, 'DEBIAN-CVE-2023-45853.json'), MINIZIP_ADVISORY);
    writeFileSync(join(this.osvDir, 'DEBIAN-CVE-2099-0001.json'), CURL_ADVISORY);
    this.proc = spawn(bin, ['--listen', '127.0.0.1:0', '--data-dir', join(this.dir, 'data'), '--port-file', portFile,
      '--auth', 'token', '--scan-on-push', 'false', '--access-log', 'false', '--vulndb-sources', this.osvDir, '--webhook-allow-private', 'true'], {
      env: { ...process.env, WHARF_ADMIN_PASSWORD: ADMIN_PASSWORD },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    this.url = `http://127.0.0.1:${await portFrom(portFile, 'wharf-core')}`;
  }

  stop() {
    for (const e of this.edges) e.kill('SIGKILL');
    this.proc?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  edges: ChildProcess[] = [];

  // A wharf-edge joined to this core (a join token asked as the administrator), reporting
  // every second; returns where it serves.
  async startEdge(name: string, site: string): Promise<string> {
    const bin = process.env.WHARF_EDGE_BIN || '../../build/edge/wharf-edge';
    const r = await this.api('POST', '/api/v1/edges', { name, site });
    if (r.status !== 201) throw new Error(`edge join token: ${r.status} ${await r.text()}`);
    const token = (await r.json()).join_token;
    const dir = join(this.dir, `edge-${name}`);
    mkdirSync(dir, { recursive: true });
    const portFile = join(dir, 'port');
    const proc = spawn(bin, ['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--port-file', portFile, '--threads', '2',
      '--core', this.url, '--join-token', token, '--report-interval', '1s'], { stdio: ['ignore', 'ignore', 'inherit'] });
    this.edges.push(proc);
    return `http://127.0.0.1:${await portFrom(portFile, 'wharf-edge')}`;
  }

  // Waits until the scan of repo:tag completes (a scan job asked now).
  async scan(repo: string, tag: string): Promise<void> {
    const path = `/api/v1/repositories/${repo}/manifests/${tag}/scan`;
    await waitFor(async () => (await (await this.api('GET', '/api/v1/vulndb')).json()).generation >= 1, 'the vulnerability database');
    const r = await this.api('POST', path);
    if (r.status !== 202) throw new Error(`scan: ${r.status} ${await r.text()}`);
    await waitFor(async () => (await (await this.api('GET', path)).json()).status === 'completed', `the scan of ${repo}:${tag}`);
  }

  // Signs repo@digest as cosign does (the simple-signing payload, ECDSA P-256, stored as
  // the tag sha256-<hex>.sig); returns the public key (PEM) that verifies it.
  async cosignSign(repo: string, digest: string): Promise<string> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const payload = Buffer.from(JSON.stringify({
      critical: { identity: { 'docker-reference': `127.0.0.1/${repo}` }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: null,
    }));
    const signature = sign('sha256', payload, privateKey).toString('base64');
    await this.pushManifest(repo, `sha256-${digest.slice(7)}.sig`, Buffer.from('{}'), [
      { data: payload, mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', annotations: { 'dev.cosignproject.cosign/signature': signature } },
    ]);
    return publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  basic(user = 'admin', password = ADMIN_PASSWORD): string {
    return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
  }

  async api(method: string, path: string, body?: unknown, user = 'admin', password = ADMIN_PASSWORD): Promise<Response> {
    return fetch(this.url + path, {
      method,
      headers: { Authorization: this.basic(user, password), 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async token(scope: string): Promise<string> {
    const r = await fetch(`${this.url}/auth/token?service=wharf&scope=${encodeURIComponent(scope)}`, {
      headers: { Authorization: this.basic() },
    });
    return (await r.json()).token;
  }

  // Pushes an image of `layers` small layers (or of these tar files); returns its digest.
  async pushImage(repo: string, tag: string, config: Record<string, unknown>, layers: number | Buffer[]): Promise<string> {
    const tars = typeof layers === 'number' ? [...Array(layers).keys()].map((i) => Buffer.from(`layer ${repo} ${tag} ${i}`)) : layers;
    return this.pushManifest(repo, tag, Buffer.from(JSON.stringify(config)),
      tars.map((t) => ({ data: gzipSync(t), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' })));
  }

  async pushManifest(repo: string, tag: string, config: Buffer,
                     layers: { data: Buffer; mediaType: string; annotations?: Record<string, string> }[]): Promise<string> {
    const token = await this.token(`repository:${repo}:pull,push`);
    const auth = { Authorization: `Bearer ${token}` };
    const blob = async (data: Buffer) => {
      const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
      const r = await fetch(`${this.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: auth, body: data });
      if (r.status !== 201) throw new Error(`blob push: ${r.status} ${await r.text()}`);
      return { digest, size: data.length };
    };
    const layerDescs = [];
    for (const l of layers) {
      const b = await blob(l.data);
      layerDescs.push({ mediaType: l.mediaType, ...b, ...(l.annotations ? { annotations: l.annotations } : {}) });
    }
    const cfg = await blob(config);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
      layers: layerDescs,
    });
    const r = await fetch(`${this.url}/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      headers: { ...auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    if (r.status !== 201) throw new Error(`manifest push: ${r.status} ${await r.text()}`);
    return 'sha256:' + createHash('sha256').update(manifest).digest('hex');
  }
}

async function portFrom(portFile: string, what: string): Promise<number> {
  let port = 0;
  await waitFor(async () => {
    if (!existsSync(portFile)) return false;
    const text = readFileSync(portFile, 'utf8');
    if (text.endsWith('\n')) port = parseInt(text, 10);
    return port > 0;
  }, `${what} to start`, 15_000);
  return port;
}

// Waits for a condition, with a deadline.
export async function waitFor(f: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await f().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// A tar archive (ustar) of these regular files.
export function tar(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    const h = Buffer.alloc(512);
    h.write(name, 0, 100);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('14700000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0' + '00', 257);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

// A Debian 12 base layer whose dpkg database has a package with a known advisory
// (MINIZIP_ADVISORY: libminizip1 1.1-8, fixed in 1.1-8+deb12u1).
export function debianLayer(): Buffer {
  return tar({
    'etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    'var/lib/dpkg/status':
      'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n\n' +
      'Package: libminizip1\nStatus: install ok installed\nArchitecture: amd64\nSource: minizip\nVersion: 1.1-8\n\n' +
      'Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n\n',
  });
}

export const MINIZIP_ADVISORY = JSON.stringify({
  id: 'DEBIAN-CVE-2023-45853', modified: '2024-01-01T00:00:00Z', aliases: ['CVE-2023-45853'],
  summary: 'MiniZip in zlib through 1.3 has an integer overflow',
  affected: [{ package: { ecosystem: 'Debian:12', name: 'minizip' },
    ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.1-8+deb12u1' }] }] }],
  severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
});

// An advisory whose text is an XSS payload (advisory texts come from outside).
export const ADVISORY_XSS = '<img src=x onerror="window.__xss=2">';
export const CURL_ADVISORY = JSON.stringify({
  id: 'DEBIAN-CVE-2099-0001', modified: '2024-01-01T00:00:00Z', summary: `curl: ${ADVISORY_XSS}`,
  affected: [{ package: { ecosystem: 'Debian:12', name: 'curl' },
    ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '7.88.1-10+deb12u6' }] }] }],
  database_specific: { severity: 'LOW' },
});

// An image config as `docker build` leaves it for a small Dockerfile.
export function builtConfig(extraLabels: Record<string, string> = {}) {
  return {
    architecture: 'amd64',
    os: 'linux',
    created: '2026-11-01T10:00:00Z',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'APP_MODE=production'],
      Entrypoint: ['/usr/local/bin/app'],
      Cmd: ['--serve'],
      WorkingDir: '/srv',
      Labels: { 'org.opencontainers.image.title': 'app', ...extraLabels },
    },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [
      { created: '2026-10-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:1b2c3d in / ' },
      { created: '2026-10-01T00:00:01Z', created_by: '/bin/sh -c #(nop)  CMD ["bash"]', empty_layer: true },
      { created: '2026-11-01T10:00:00Z', created_by: 'RUN /bin/sh -c apt-get update && apt-get install -y curl # buildkit' },
      { created: '2026-11-01T10:00:01Z', created_by: 'COPY app /usr/local/bin/app # buildkit' },
      { created: '2026-11-01T10:00:02Z', created_by: 'WORKDIR /srv', empty_layer: true },
      { created: '2026-11-01T10:00:03Z', created_by: 'ENTRYPOINT ["/usr/local/bin/app"]', empty_layer: true },
    ],
  };
}
