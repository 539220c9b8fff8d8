#include "core/trust/lmdb_trust_store.h"

#include <nlohmann/json.hpp>

#include "shared/base/json_body.h"
#include "shared/tls/crypto.h"

namespace wharf {

namespace {

std::string roleKey(const std::string& gun, const std::string& role) { return gun + '\0' + role; }

}  // namespace

Result<std::unique_ptr<LmdbTrustStore>> LmdbTrustStore::open(std::shared_ptr<LmdbEnv> env) {
  std::unique_ptr<LmdbTrustStore> s(new LmdbTrustStore(std::move(env)));
  struct Named {
    const char* name;
    Dbi* dbi;
  };
  for (Named n : {Named{"trust_files", &s->files_}, Named{"trust_current", &s->current_},
                  Named{"trust_checksums", &s->checksums_}, Named{"trust_keys", &s->keys_},
                  Named{"trust_changes", &s->changes_}, Named{"trust_meta", &s->meta_}}) {
    auto db = s->env_->openDb(n.name);
    if (!db.isOk()) return db.status();
    *n.dbi = *db;
  }
  return s;
}

Result<TufFile> LmdbTrustStore::file(const Txn& txn, const std::string& gun, const std::string& role, int64_t version) {
  std::string_view v;
  Status st = txn.get(files_, roleKey(gun, role) + '\0' + bigEndian64(uint64_t(version)), &v);
  if (st.code() == Code::kNotFound) return Status(Code::kNotFound, gun + ": no " + role + " version " + std::to_string(version));
  WHARF_RETURN_IF_ERROR(st);
  auto nl1 = v.find('\n');
  auto nl2 = nl1 == std::string_view::npos ? nl1 : v.find('\n', nl1 + 1);
  if (nl2 == std::string_view::npos) return Status(Code::kCorruption, "trust store: a file record does not decode");
  TufFile f;
  f.role = role;
  f.version = version;
  f.sha256 = std::string(v.substr(0, nl1));
  f.stored_ms = std::strtoll(std::string(v.substr(nl1 + 1, nl2 - nl1 - 1)).c_str(), nullptr, 10);
  f.bytes = std::string(v.substr(nl2 + 1));
  return f;
}

Result<TufFile> LmdbTrustStore::current(const std::string& gun, const std::string& role) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  Status st = txn->get(current_, roleKey(gun, role), &v);
  if (st.code() == Code::kNotFound) return Status(Code::kNotFound, gun + ": no " + role);
  WHARF_RETURN_IF_ERROR(st);
  return file(*txn, gun, role, int64_t(fromBigEndian64(v)));
}

Result<TufFile> LmdbTrustStore::byVersion(const std::string& gun, const std::string& role, int64_t version) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  return file(*txn, gun, role, version);
}

Result<TufFile> LmdbTrustStore::byChecksum(const std::string& gun, const std::string& role, const std::string& sha256_hex) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  Status st = txn->get(checksums_, roleKey(gun, role) + '\0' + sha256_hex, &v);
  if (st.code() == Code::kNotFound) return Status(Code::kNotFound, gun + ": no " + role + " with that checksum");
  WHARF_RETURN_IF_ERROR(st);
  return file(*txn, gun, role, int64_t(fromBigEndian64(v)));
}

Result<std::vector<TufFile>> LmdbTrustStore::currentAll(const std::string& gun) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::vector<std::pair<std::string, int64_t>> roles;
  std::string prefix = gun + '\0';
  auto c = txn->cursor(current_);
  for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next())
    roles.emplace_back(std::string(c.key().substr(prefix.size())), int64_t(fromBigEndian64(c.value())));
  WHARF_RETURN_IF_ERROR(c.status());
  std::vector<TufFile> out;
  for (const auto& [role, version] : roles) {
    auto f = file(*txn, gun, role, version);
    if (!f.isOk()) return f.status();
    out.push_back(std::move(*f));
  }
  return out;
}

Result<std::vector<std::string>> LmdbTrustStore::guns() {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::vector<std::string> out;
  auto c = txn->cursor(current_);
  for (bool ok = c.seek(std::string_view("\0", 1)); ok;) {
    std::string_view k = c.key();
    std::string gun(k.substr(0, k.find('\0')));
    out.push_back(gun);
    ok = c.seek(gun + '\x01');  // past every role of this GUN
  }
  WHARF_RETURN_IF_ERROR(c.status());
  return out;
}

Status LmdbTrustStore::appendChange(WriteTxn& txn, const std::string& gun, const std::string& action, int64_t version,
                                    const std::string& sha256, int64_t now_ms) {
  std::string_view last;
  uint64_t seq = txn.get(meta_, "change_seq", &last).isOk() ? fromBigEndian64(last) + 1 : 1;
  WHARF_RETURN_IF_ERROR(txn.put(meta_, "change_seq", bigEndian64(seq)));
  nlohmann::json j = {{"gun", gun}, {"action", action}, {"version", version}, {"sha256", sha256}, {"ts", now_ms}};
  return txn.put(changes_, bigEndian64(seq), j.dump());
}

Status LmdbTrustStore::update(const std::string& gun, const std::vector<TufFile>& files, int64_t now_ms) {
  std::lock_guard lock(write_mu_);
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  const TufFile* timestamp = nullptr;  // a new timestamp is a change (as Notary's feed)
  std::string timestamp_sha;
  for (const auto& f : files) {
    std::string rk = roleKey(gun, f.role);
    std::string_view cur;
    if (txn->get(current_, rk, &cur).isOk()) {
      int64_t have = int64_t(fromBigEndian64(cur));
      if (f.version == have) {
        auto stored = file(*txn, gun, f.role, have);
        if (stored.isOk() && stored->bytes == f.bytes) continue;  // the same file again
      }
      if (f.version <= have)
        return Status(Code::kConflict, f.role + ": version " + std::to_string(f.version) + " is not above the current " +
                                           std::to_string(have));
    }
    std::string sha = sha256Hex(f.bytes);
    WHARF_RETURN_IF_ERROR(txn->put(files_, rk + '\0' + bigEndian64(uint64_t(f.version)),
                                   sha + '\n' + std::to_string(now_ms) + '\n' + f.bytes));
    WHARF_RETURN_IF_ERROR(txn->put(checksums_, rk + '\0' + sha, bigEndian64(uint64_t(f.version))));
    WHARF_RETURN_IF_ERROR(txn->put(current_, rk, bigEndian64(uint64_t(f.version))));
    if (f.role == "timestamp") {
      timestamp = &f;
      timestamp_sha = sha;
    }
  }
  if (timestamp != nullptr)
    WHARF_RETURN_IF_ERROR(appendChange(*txn, gun, "update", timestamp->version, timestamp_sha, now_ms));
  return txn->commit();
}

Status LmdbTrustStore::deleteGun(const std::string& gun, int64_t now_ms) {
  std::lock_guard lock(write_mu_);
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  std::string prefix = gun + '\0';
  bool any = false;
  for (Dbi db : {files_, current_, checksums_, keys_}) {
    std::vector<std::string> doomed;
    auto c = txn->cursor(db);
    for (bool ok = c.seek(prefix); ok && c.key().substr(0, prefix.size()) == prefix; ok = c.next())
      doomed.emplace_back(c.key());
    WHARF_RETURN_IF_ERROR(c.status());
    for (const auto& k : doomed) WHARF_RETURN_IF_ERROR(txn->del(db, k));
    any = any || !doomed.empty();
  }
  if (any) WHARF_RETURN_IF_ERROR(appendChange(*txn, gun, "deletion", 0, "", now_ms));
  return txn->commit();
}

Result<std::string> LmdbTrustStore::serverKey(const std::string& gun, const std::string& role) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::string_view v;
  Status st = txn->get(keys_, roleKey(gun, role), &v);
  if (st.code() == Code::kNotFound) return Status(Code::kNotFound, gun + ": no " + role + " key");
  WHARF_RETURN_IF_ERROR(st);
  return std::string(v);
}

Status LmdbTrustStore::putServerKey(const std::string& gun, const std::string& role, const std::string& sealed) {
  std::lock_guard lock(write_mu_);
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  WHARF_RETURN_IF_ERROR(txn->put(keys_, roleKey(gun, role), sealed));
  return txn->commit();
}

Result<std::string> LmdbTrustStore::addServerKey(const std::string& gun, const std::string& role,
                                                 const std::string& sealed) {
  std::lock_guard lock(write_mu_);
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  std::string_view there;
  if (txn->get(keys_, roleKey(gun, role), &there).isOk()) return std::string(there);
  WHARF_RETURN_IF_ERROR(txn->put(keys_, roleKey(gun, role), sealed));
  WHARF_RETURN_IF_ERROR(txn->commit());
  return sealed;
}

Status LmdbTrustStore::deleteServerKey(const std::string& gun, const std::string& role) {
  std::lock_guard lock(write_mu_);
  auto txn = env_->write();
  if (!txn.isOk()) return txn.status();
  Status st = txn->del(keys_, roleKey(gun, role));
  if (!st.isOk() && st.code() != Code::kNotFound) return st;
  return txn->commit();
}

Result<std::vector<TrustChange>> LmdbTrustStore::changes(const std::string& gun, uint64_t after, size_t limit) {
  auto txn = env_->read();
  if (!txn.isOk()) return txn.status();
  std::vector<TrustChange> out;
  auto c = txn->cursor(changes_);
  for (bool ok = c.seek(bigEndian64(after + 1)); ok && out.size() < limit; ok = c.next()) {
    auto j = nlohmann::json::parse(c.value(), nullptr, false);
    if (!j.is_object()) return Status(Code::kCorruption, "trust store: a change record does not decode");
    TrustChange ch{fromBigEndian64(c.key()), jsonStringOr(j, "gun"), jsonStringOr(j, "action"), j.value("version", int64_t(0)),
                   jsonStringOr(j, "sha256"), j.value("ts", int64_t(0))};
    if (!gun.empty() && ch.gun != gun) continue;
    out.push_back(std::move(ch));
  }
  WHARF_RETURN_IF_ERROR(c.status());
  return out;
}

}  // namespace wharf
