// LDAP / Active Directory: directory users log in by binding as themselves (their
// password is never stored), and a sync creates, updates and disables directory users
// and sets the members of mapped teams. Only this module includes <ldap.h>.
//
// Every call blocks on the network: run them on worker threads. Thread-safe (each call
// opens its own connection).
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/auth/identity_store.h"
#include "shared/base/clock.h"

namespace wharf {

struct LdapConfig {
  bool enabled = false;
  std::string url;              // ldap://host:389 or ldaps://host:636
  bool start_tls = false;       // upgrade ldap:// with StartTLS
  std::string ca_file;          // CA bundle for ldaps/StartTLS (empty: system default)
  bool insecure_skip_verify = false;
  std::string bind_dn;          // service account used to search
  std::string bind_password;    // never returned by the API, never logged
  std::string user_base;
  std::string user_filter = "(objectClass=inetOrgPerson)";  // AD: (&(objectClass=user)(objectCategory=person))
  std::string user_attr = "uid";                            // AD: sAMAccountName
  std::string email_attr = "mail";
  std::string group_base;
  std::string group_filter = "(objectClass=groupOfNames)";  // AD: (objectClass=group)
  std::string group_name_attr = "cn";
  std::string group_member_attr = "member";
  std::map<std::string, std::string> team_map;  // directory group name -> "org/team"
  int64_t sync_interval_ms = 3'600'000;
  int64_t timeout_ms = 10'000;

  // Parses and validates the JSON form (unknown keys refused).
  static Result<LdapConfig> fromJson(const nlohmann::json& j);
  // The JSON form; with redact, the bind password is left out.
  nlohmann::json toJson(bool redact) const;
};

struct DirectoryUser {
  std::string name;
  std::string dn;
  std::string email;
};

struct SyncReport {
  int users_seen = 0, created = 0, updated = 0, disabled = 0, skipped = 0;
  int members_added = 0, members_removed = 0;
  std::vector<std::string> problems;
  // Users whose access the sync narrowed (disabled, or removed from a team): their
  // issued tokens are revoked (AuthService::revokeSubjects).
  std::vector<std::string> narrowed;
  nlohmann::json toJson() const;
};

// RFC 4515 escaping of a value placed in a search filter.
std::string escapeFilterValue(std::string_view value);

class LdapDirectory {
 public:
  // Binds as the user found by name (after binding as the service account to search).
  // kUnauthorized for unknown users and wrong passwords; an empty password never binds.
  static Result<DirectoryUser> authenticate(const LdapConfig& config, const std::string& user,
                                            const std::string& password);
  static Result<SyncReport> sync(const LdapConfig& config, IdentityStore& identity, Clock& clock);
  // Checks that the service account can bind.
  static Status test(const LdapConfig& config);
};

}  // namespace wharf
