#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Run it again after changing a target's input format (needs python3-cryptography for
the signed token seeds). The fuzzers themselves never need it: the seeds are committed.
Seeds that reproduce a fixed bug live next to these as regress-* files; this script
does not touch them.
"""
import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# tests/fuzz/fuzz_support.h: kTokenKeyPem, kTokenKid, kIssuer, kAudience, kNowS.
KEY_PEM = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgb1yv//HL5y5ouKXU
7VziycbQ2BlzOzxmFKSnKJow36ShRANCAASckHFR5gDxjJz4oHaMzC2Bj6SES3e4
LduYGVhlkil4ijimsADjglObH9m9myjMOMbq+Wkf78TsWf/JylZyqypk
-----END PRIVATE KEY-----
"""
KID, ISSUER, AUDIENCE, NOW = "fuzz-key", "wharf-core", "wharf", 1_700_000_000


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def sha(data):
    return "sha256:" + hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


# --- token -----------------------------------------------------------------------------

def b64(data):
    return base64.urlsafe_b64encode(data if isinstance(data, bytes) else data.encode()).rstrip(b"=").decode()


KEY = serialization.load_pem_private_key(KEY_PEM, password=None)


def sign(header, payload, key=KEY):
    signing_input = b64(header) + "." + b64(payload)
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def claims(**over):
    c = {"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "jti": "j1", "iat": NOW - 10, "nbf": NOW - 10,
         "exp": NOW + 300, "access": [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def token_seeds():
    header = compact({"alg": "ES256", "kid": KID, "typ": "JWT"})
    tokens = {
        "access": sign(header, compact(claims())),
        "catalog": sign(header, compact(claims(access=[{"type": "registry", "name": "catalog", "actions": ["*"]}]))),
        "refresh": sign(header, compact(claims(typ="refresh", pat="pat-1", access=[]))),
        "anonymous": sign(header, compact(claims(sub=""))),
        "expired": sign(header, compact(claims(exp=NOW - 3600))),
        "not-yet": sign(header, compact(claims(nbf=NOW + 3600))),
        "wrong-issuer": sign(header, compact(claims(iss="someone"))),
        "unknown-kid": sign(compact({"alg": "ES256", "kid": "other-key"}), compact(claims())),
        "other-key": sign(compact({"alg": "ES256", "kid": "other"}), compact(claims()),
                          ec.generate_private_key(ec.SECP256R1())),
        "alg-none": b64(compact({"alg": "none", "kid": KID})) + "." + b64(compact(claims())) + ".",
        "alg-hs256": b64(compact({"alg": "HS256", "kid": KID})) + "." + b64(compact(claims())) + "." + b64("x" * 32),
        "jwk-header": sign(compact({"alg": "ES256", "kid": KID, "jwk": {"kty": "EC"}}), compact(claims())),
        "malformed-dots": "a.b",
        "malformed-b64": "!!!.???.***",
    }
    for name, tok in tokens.items():
        write("token", "verify-" + name, b"\x00" + tok.encode())
    # Mode 1: signed by the fuzzer itself; the payload (or header \0 payload) is the input.
    payloads = {
        "access": compact(claims()),
        "no-access": compact(claims(access=None)),
        "bad-access": compact(claims(access=[{"type": "repository", "name": 5}])),
        "big-exp": compact(claims(exp=2**62)),
        "strings-for-times": compact(claims(exp="soon")),
        "typ-number": compact(claims(typ=1)),
        "deep": compact(claims(jti=[[[[[[[[["x"]]]]]]]]])),
    }
    for name, p in payloads.items():
        write("token", "signed-" + name, b"\x01" + p.encode())
    write("token", "signed-header-crit", b"\x01" + compact({"alg": "ES256", "kid": KID, "crit": ["exp"]}).encode() +
          b"\x00" + compact(claims()).encode())
    write("token", "signed-header-kid-number", b"\x01" + compact({"alg": "ES256", "kid": 7}).encode() + b"\x00" +
          compact(claims()).encode())
    for name, s in {"repo": "repository:team/app:pull,push", "port": "repository:localhost:5000/team/app:pull",
                    "catalog": "registry:catalog:*", "dupes": "repository:a/b:push,pull,,push",
                    "empty-name": "repository::pull"}.items():
        write("token", "scope-" + name, b"\x02" + s.encode())


# --- manifest ------------------------------------------------------------------------
# First byte: the Content-Type (fuzz_manifest.cc kTypes): 0 none, 1 application/json,
# 2 OCI manifest, 3 OCI index, 4 Docker v2, 5 Docker list, 6 schema 1 signed, 7 OCI + charset.

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def manifest_seeds():
    config = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    oci = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                      "size": len(config)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha("layer1"),
                       "size": 32654},
                      {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": sha("layer2"),
                       "size": 16724, "annotations": {"org.opencontainers.image.title": "app.tar"}}],
           "annotations": {"org.opencontainers.image.created": "2024-01-02T03:04:05Z"}}
    oci_text = json.dumps(oci, indent=3)
    write("manifest", "oci-manifest", b"\x02" + oci_text.encode())
    write("manifest", "oci-manifest-json-ct", b"\x01" + compact({k: v for k, v in oci.items() if k != "mediaType"}).encode())
    write("manifest", "oci-manifest-charset", b"\x07" + compact(oci).encode())
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha(oci_text), "size": len(oci_text),
                            "platform": {"architecture": "amd64", "os": "linux"}},
                           {"mediaType": OCI_MANIFEST, "digest": sha("arm64"), "size": 1234,
                            "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}],
             "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    write("manifest", "oci-index", b"\x03" + json.dumps(index, indent=2).encode())
    write("manifest", "oci-index-no-type", b"\x00" + compact({"schemaVersion": 2, "manifests": index["manifests"]}).encode())
    docker = {"schemaVersion": 2, "mediaType": DOCKER_V2,
              "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                         "digest": sha("docker-config")},
              "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                          "digest": sha("docker-layer")},
                         {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 1024,
                          "digest": sha("foreign"), "urls": ["https://example.com/layer.tar.gz"]}]}
    write("manifest", "docker-schema2", b"\x04" + json.dumps(docker, indent=3).encode())
    docker_list = {"schemaVersion": 2, "mediaType": DOCKER_LIST,
                   "manifests": [{"mediaType": DOCKER_V2, "size": 7143, "digest": sha("amd64"),
                                  "platform": {"architecture": "amd64", "os": "linux"}},
                                 {"mediaType": DOCKER_V2, "size": 7682, "digest": sha("ppc"),
                                  "platform": {"architecture": "ppc64le", "os": "linux"}}]}
    write("manifest", "docker-list", b"\x05" + json.dumps(docker_list, indent=3).encode())
    empty = "{}"
    artifact = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom.v1+json",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha(empty), "size": 2,
                           "data": "e30="},
                "layers": [{"mediaType": "application/spdx+json", "digest": sha("sbom"), "size": 4096}],
                "subject": {"mediaType": OCI_MANIFEST, "digest": sha(oci_text), "size": len(oci_text)},
                "annotations": {"org.opencontainers.image.created": "2024-01-02T03:04:05Z"}}
    write("manifest", "artifact-subject", b"\x02" + compact(artifact).encode())
    index_subject = {"schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": "application/vnd.example.sig",
                     "manifests": [], "subject": {"mediaType": OCI_INDEX, "digest": sha("idx"), "size": 10}}
    write("manifest", "index-subject", b"\x03" + compact(index_subject).encode())
    sha512 = dict(oci, layers=[{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                "digest": "sha512:" + hashlib.sha512(b"x").hexdigest(), "size": 1}])
    write("manifest", "sha512-layer", b"\x02" + compact(sha512).encode())
    schema1 = {"schemaVersion": 1, "name": "team/app", "tag": "v1", "architecture": "amd64", "fsLayers": [],
               "history": [], "signatures": []}
    write("manifest", "schema1", b"\x06" + compact(schema1).encode())
    write("manifest", "ambiguous", b"\x00" + compact(dict(oci, manifests=[])).encode())


# --- json_body ---------------------------------------------------------------------------

def json_body_seeds():
    bodies = {
        "typed": {"name": "app", "count": 3, "big": 9007199254740993, "ratio": 0.5, "enabled": True,
                  "tags": ["a", "b"], "nested": {"a": "x", "b": 1, "c": {"d": False}}, "params": {"k": 1}},
        "typed-errors": {"name": "", "count": 1001, "ratio": "1", "tags": [1], "nested": [], "extra": None},
        "policy": {"immutable": ["v*", "release-?"], "retention": {"match": "v*", "keep_last": 10, "keep_days": 30}},
        "policy-get-output": {"scope": "team/app", "immutable": [], "retention": {"match": "*", "keep_days": 7}},
        "edge-settings": {"tag_ttl": "5m", "cache_budget": "10GiB", "high_watermark": 90, "low_watermark": 80},
        "edge-create": {"name": "site-1", "site": "paris", "settings": {"cache_budget": "1536MiB", "tag_ttl": "90s"},
                        "ttl_seconds": 3600},
        "ldap": {"enabled": True, "url": "ldap://ldap.example.com:389", "start_tls": True, "ca_file": "/etc/ca.pem",
                 "bind_dn": "cn=svc,dc=example,dc=com", "bind_password": "secret", "user_base": "ou=people,dc=example,dc=com",
                 "user_filter": "(objectClass=inetOrgPerson)", "user_attr": "uid", "email_attr": "mail",
                 "group_base": "ou=groups,dc=example,dc=com", "group_filter": "(objectClass=groupOfNames)",
                 "group_name_attr": "cn", "group_member_attr": "member",
                 "team_map": {"Developers": "acme/devs", "ops": "acme/ops"},
                 "sync_interval_seconds": 3600, "timeout_seconds": 10},
        "ldap-ad": {"url": "ldaps://ad.example.com", "user_base": "dc=corp",
                    "user_filter": "(&(objectClass=user)(objectCategory=person))", "user_attr": "sAMAccountName",
                    "sync_interval_seconds": 0},
        "policy-trust": {"trust": {"require": "either", "roles": ["targets/releases"], "keys": ["a" * 64],
                                   "cosign_keys": ["-----BEGIN PUBLIC KEY-----\n"
                                                   "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnJBxUeYA8Yyc+KB2jMwtgY+khEt3\n"
                                                   "uC3bmBlYZZIpeIo4prAA44JTmx/ZvZsozDjG6vlpH+/E7Fn/ycpWcqsqZA==\n"
                                                   "-----END PUBLIC KEY-----\n"]},
                         "scan": {"block_severity": "HIGH"}},
        "gc-params": {"dry_run": True, "retention": "false", "untagged_older_than": "7d", "grace": "1h", "yield": 2.5},
        "job": {"kind": "gc", "params": {"dry_run": "true", "grace": "30m"}},
    }
    for name, body in bodies.items():
        write("json_body", name, compact(body))
    write("json_body", "empty", "  \n")
    write("json_body", "deep", "[" * 40 + "]" * 40)


# --- cron ----------------------------------------------------------------------------------

def cron_seeds():
    for i, expr in enumerate(["*/15 * * * *", "0 3 * * sun", "0 0 1 * mon", "0 0 29 2 *", "@daily", "@every 90s",
                              "30 2 1-7 jan-mar,OCT 1-5/2", "5/10 */6 * * 7", "0 0 31 4,6 *", "@every 1d",
                              "59 23 31 12 fri"]):
        write("cron", "expr-%02d" % i, expr)


# --- edge_fill -------------------------------------------------------------------------------
# First byte: flags (bit 0: the empty blob, bit 1: two clients); then the upstream's
# answers separated by "\n--next--\n" (fuzz_edge_fill.cc).

SPLIT = b"\n--next--\n"


def edge_blob():
    b = bytearray(ord("a") + (i * 7 + i // 26) % 26 for i in range(300))
    b[299] = ord("\n")
    return bytes(b)


def edge_fill_seeds():
    blob = edge_blob()
    n = len(blob)
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % n + blob
    seeds = {
        "ok-length": b"\x00" + ok,
        "ok-follower": b"\x02" + ok,
        "ok-chunked": b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"64\r\n" + blob[:100] + b"\r\n" +
                      b"%x\r\n" % (n - 100) + blob[100:] + b"\r\n0\r\n\r\n",
        "ok-close": b"\x00HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + blob,
        "resume-206": b"\x00HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + blob[:100] + SPLIT +
                      b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-%d/%d\r\nContent-Length: %d\r\n\r\n"
                      % (n - 1, n, n - 100) + blob[100:],
        "resume-200": b"\x02HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + blob[:150] + SPLIT + ok,
        "resume-cut-again": b"\x00HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + blob[:10] + SPLIT +
                            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-%d/%d\r\n\r\n" % (n - 1, n) +
                            blob[10:50] + SPLIT + b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
        "mismatch": b"\x00HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + blob[:-1] + b"X",
        "short": b"\x00HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (n - 1) + blob[:-1],
        "long-close": b"\x02HTTP/1.1 200 OK\r\n\r\n" + blob + b"extra",
        "not-found": b"\x00HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n"
                     b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}',
        "unauthorized": b"\x00HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
        "empty-blob": b"\x01HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "empty-blob-chunked": b"\x03HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "bad-length": b"\x00HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n" + blob,
        "continue-then-ok": b"\x00HTTP/1.1 100 Continue\r\n\r\n" + ok,
        "silence": b"\x00",
    }
    for name, data in seeds.items():
        write("edge_fill", name, data)


# --- http_request --------------------------------------------------------------------------
# Raw bytes a client sends (one or more requests on one connection).

def http_request_seeds():
    d = sha("x")
    seeds = {
        "head-blob": "HEAD /v2/team/app/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n" % d,
        "manifest-tag": "GET /v2/team/sub/app/manifests/v1.2 HTTP/1.1\r\nHost: x\r\nAccept: %s, %s\r\n"
                        "Authorization: Bearer abc.def.ghi\r\n\r\n" % (OCI_MANIFEST, OCI_INDEX),
        "put-manifest": "PUT /v2/team/app/manifests/latest HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                        "Content-Length: 2\r\n\r\n{}" % OCI_MANIFEST,
        "upload-patch": "PATCH /v2/team/app/blobs/uploads/0123-abcd HTTP/1.1\r\nHost: x\r\nContent-Range: 0-3\r\n"
                        "Content-Length: 4\r\n\r\nabcd",
        "upload-put": "PUT /v2/team/app/blobs/uploads/0123-abcd?digest=%s HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: 0\r\n\r\n" % d,
        "tags-page": "GET /v2/team/app/tags/list?n=10&last=v1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "referrers": "GET /v2/team/app/referrers/%s?artifactType=application%%2Fvnd.example HTTP/1.1\r\nHost: x\r\n\r\n" % d,
        "catalog-keepalive": "GET /v2/_catalog?n=5 HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n"
                             "Connection: close\r\n\r\n",
        "percent-dots": "GET /v2/team/%2e%2e/app/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "http10": "GET /v2/ HTTP/1.0\r\n\r\n",
        "obs-fold": "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        "space-before-colon": "GET /v2/ HTTP/1.1\r\nHost : x\r\n\r\n",
        "te-gzip": "POST /v2/a/b/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "cl-and-te": "POST /v2/a/b/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "chunk-ext-trailer": "POST /v2/a/b/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "2;ext=1\r\nab\r\n0\r\nX-Trailer: t\r\n\r\n",
        "api-json": "POST /api/v1/edges HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 17\r\n\r\n{\"name\":\"site-1\"}",
        "absolute-form": "GET http://x/v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
    }
    for name, data in seeds.items():
        write("http_request", name, data)


def tar_of(files):
    import io
    import tarfile
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(content))
    return out.getvalue()


def layer_seeds():
    # First byte: the read size; then the blob (tar, gzip or zstd).
    import gzip
    status = (b"Package: libc6\nStatus: install ok installed\nSource: glibc\nVersion: 2.36-9+deb12u1\n"
              b"Architecture: amd64\n\nPackage: zlib1g\nStatus: deinstall ok config-files\nVersion: 1\n")
    files = {
        "etc/os-release": b"ID=debian\nVERSION_ID=\"12\"\n",
        "var/lib/dpkg/status": status,
        "lib/apk/db/installed": b"P:musl\nV:1.2.4-r2\no:musl\n\n",
        "usr/lib/python3/dist-packages/a-1.0.dist-info/METADATA": b"Name: a\nVersion: 1.0\n",
        "app/node_modules/x/package.json": b'{"name":"x","version":"1.0.0"}',
        "usr/.wh.gone": b"",
        "opt/.wh..wh..opq": b"",
    }
    tar = tar_of(files)
    write("layer", "tar", bytes([7]) + tar)
    write("layer", "gzip", bytes([64]) + gzip.compress(tar, mtime=0))
    write("layer", "two-members", bytes([3]) + gzip.compress(tar[:1024], mtime=0) + gzip.compress(tar[1024:], mtime=0))


def osv_seeds():
    write("osv", "debian", compact({
        "id": "DSA-5514-1", "aliases": ["CVE-2023-4911"], "modified": "2023-10-03T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]}]}],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}]}))
    write("osv", "pypi", compact({
        "id": "GHSA-j8r2-6x86-q33q", "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}],
        "versions": ["2.30.0"]}], "database_specific": {"severity": "MODERATE"}}))
    write("osv", "go", compact({
        "id": "GO-2023-1", "affected": [{"package": {"ecosystem": "Go", "name": "stdlib"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"last_affected": "1.20.1"},
                                                 {"limit": "1.21.0"}]}]}]}))


# --- tuf ---------------------------------------------------------------------------------
# A GUN's metadata as the notary CLI makes it (tests/fuzz/fuzz_tuf.cc: a JSON object of
# role -> file, the GUN and "now" fixed there).
TUF_GUN = "fuzz.example:5000/team/app"


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tuf_key(pub_b64, keytype):
    key = {"keytype": keytype, "keyval": {"private": None, "public": pub_b64}}
    return hashlib.sha256(canonical(key).encode()).hexdigest(), key


def tuf_sign(body, signers):
    sigs = []
    for priv, kid in signers:
        der = priv.sign(canonical(body).encode(), ec.ECDSA(hashes.SHA256()))
        r, s_ = decode_dss_signature(der)
        raw = r.to_bytes(32, "big") + s_.to_bytes(32, "big")
        sigs.append({"keyid": kid, "method": "ecdsa", "sig": base64.b64encode(raw).decode()})
    return compact({"signed": body, "signatures": sigs})


def tuf_seeds():
    import datetime
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    def ecdsa():
        priv = ec.generate_private_key(ec.SECP256R1())
        spki = priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        kid, key = tuf_key(base64.b64encode(spki).decode(), "ecdsa")
        return priv, kid, key

    root_priv = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TUF_GUN)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(root_priv.public_key())
            .serial_number(1).not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2035, 1, 1)).sign(root_priv, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    root_kid, root_key = tuf_key(base64.b64encode(pem).decode(), "ecdsa-x509")
    targets, snapshot, timestamp, release = ecdsa(), ecdsa(), ecdsa(), ecdsa()
    expires = "2030-01-01T00:00:00Z"
    root = tuf_sign({"_type": "Root", "version": 1, "expires": expires, "consistent_snapshot": False,
                     "keys": {root_kid: root_key, targets[1]: targets[2], snapshot[1]: snapshot[2],
                              timestamp[1]: timestamp[2]},
                     "roles": {"root": {"keyids": [root_kid], "threshold": 1},
                               "targets": {"keyids": [targets[1]], "threshold": 1},
                               "snapshot": {"keyids": [snapshot[1]], "threshold": 1},
                               "timestamp": {"keyids": [timestamp[1]], "threshold": 1}}},
                    [(root_priv, root_kid)])
    manifest = b'{"schemaVersion":2}'
    meta = {"length": len(manifest), "hashes": {"sha256": base64.b64encode(hashlib.sha256(manifest).digest()).decode()}}
    tgt = tuf_sign({"_type": "Targets", "version": 1, "expires": expires, "targets": {"v1": meta},
                    "delegations": {"keys": {release[1]: release[2]},
                                    "roles": [{"name": "targets/releases", "keyids": [release[1]], "threshold": 1,
                                               "paths": [""]}]}},
                   [(targets[0], targets[1])])
    rel = tuf_sign({"_type": "Targets", "version": 1, "expires": expires, "targets": {"v2": meta},
                    "delegations": {"keys": {}, "roles": []}}, [(release[0], release[1])])

    def file_meta(data):
        data = data.encode()
        return {"length": len(data), "hashes": {"sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
                                                "sha512": base64.b64encode(hashlib.sha512(data).digest()).decode()}}

    snap = tuf_sign({"_type": "Snapshot", "version": 1, "expires": expires,
                     "meta": {"root": file_meta(root), "targets": file_meta(tgt), "targets/releases": file_meta(rel)}},
                    [(snapshot[0], snapshot[1])])
    ts = tuf_sign({"_type": "Timestamp", "version": 1, "expires": expires, "meta": {"snapshot": file_meta(snap)}},
                  [(timestamp[0], timestamp[1])])
    files = {"root": root, "targets": tgt, "targets/releases": rel, "snapshot": snap, "timestamp": ts}
    write("tuf", "repository", compact(files))
    write("tuf", "no-delegation", compact({k: v for k, v in files.items() if k != "targets/releases"}))
    write("tuf", "root-only", root)
    write("tuf", "cosign-payload", compact({"critical": {"identity": {"docker-reference": "r/a:v1"},
                                                         "image": {"docker-manifest-digest": sha(manifest)},
                                                         "type": "cosign container image signature"},
                                            "optional": None}))


SEEDS = {"http_request": lambda: http_request_seeds(), "token": lambda: token_seeds(),
         "manifest": lambda: manifest_seeds(), "json_body": lambda: json_body_seeds(), "cron": lambda: cron_seeds(),
         "edge_fill": lambda: edge_fill_seeds(), "layer": lambda: layer_seeds(), "osv": lambda: osv_seeds(),
         "tuf": lambda: tuf_seeds()}


def main():
    # make_seeds.py [target...]: only those (signed seeds change at every run).
    for name in sys.argv[1:] or SEEDS.keys():
        SEEDS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
