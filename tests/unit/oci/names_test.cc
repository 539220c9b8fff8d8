#include <catch2/catch.hpp>

#include <string>

#include "shared/oci/names.h"

// Each file's own names: the test binaries are unity builds.
namespace names_test {

using namespace wharf;

TEST_CASE("validateRepositoryName accepts the spec's grammar") {
  for (const char* ok : {"a", "library/ubuntu", "a0", "0", "my.repo", "my_repo", "my__repo", "my-repo", "my---repo",
                         "a.b_c__d-e--f", "org/team/project/image", "x/y.z/w_v/u__t/s-r", "123/456"}) {
    INFO("name: " << ok);
    CHECK(validateRepositoryName(ok).isOk());
  }
}

TEST_CASE("validateRepositoryName refuses separators the spec does not allow") {
  for (const char* bad : {"",
                          "Library/ubuntu",  // upper case
                          "a..b", "a___b", "a._b", "a_.b", "a-.b", "a.-b", "a-_b",
                          ".a", "_a", "-a", "a.", "a_", "a-", "a__",  // leading/trailing separators
                          "/a", "a/", "a//b", "/", "a/./b", "a/../b", "a/.b", "a/b-",  // empty/odd components
                          "a b", "a:b", "a@b", "a+b", "a\\b", "a%2fb", "é"}) {
    INFO("name: \"" << bad << "\"");
    Status st = validateRepositoryName(bad);
    CHECK_FALSE(st.isOk());
    CHECK(st.code() == Code::kNameInvalid);
  }
  CHECK(validateRepositoryName(std::string_view("a\0b", 3)).code() == Code::kNameInvalid);
}

TEST_CASE("validateRepositoryName limits the whole name to 255 characters") {
  std::string max(255, 'a');
  CHECK(validateRepositoryName(max).isOk());
  CHECK(validateRepositoryName(max + "a").code() == Code::kNameInvalid);
  // Made of valid components, still too long as a whole.
  std::string parts;
  while (parts.size() < 250) parts += "abcd/";
  parts += "abcdefgh";
  REQUIRE(parts.size() > 255);
  CHECK(validateRepositoryName(parts).code() == Code::kNameInvalid);
  std::string exact = std::string(127, 'a') + "/" + std::string(127, 'b');
  REQUIRE(exact.size() == 255);
  CHECK(validateRepositoryName(exact).isOk());
}

TEST_CASE("validateTag: first character, allowed characters, 128 limit") {
  for (const char* ok : {"latest", "v1.2.3", "_private", "A", "9", "1.0-rc.1_build", "UPPER", "a--b..c__d"}) {
    INFO("tag: " << ok);
    CHECK(validateTag(ok).isOk());
  }
  for (const char* bad : {"", ".hidden", "-dash", "a/b", "a:b", "a b", "a+b", "tag@sha", "é", "a\nb"}) {
    INFO("tag: \"" << bad << "\"");
    CHECK(validateTag(bad).code() == Code::kTagInvalid);
  }
  CHECK(validateTag(std::string(128, 'a')).isOk());
  CHECK(validateTag(std::string(129, 'a')).code() == Code::kTagInvalid);
  CHECK(validateTag("_" + std::string(127, '-')).isOk());
}

TEST_CASE("isDigestReference: a ':' makes a digest") {
  CHECK(isDigestReference("sha256:abc"));
  CHECK(isDigestReference(":"));
  CHECK_FALSE(isDigestReference("latest"));
  CHECK_FALSE(isDigestReference(""));
}

TEST_CASE("names: repository patterns", "[oci][names]") {
  CHECK(validateRepositoryPattern("*").isOk());
  CHECK(validateRepositoryPattern("team/*").isOk());
  CHECK(validateRepositoryPattern("team/app").isOk());
  CHECK(validateRepositoryPattern("app").isOk());
  for (const char* bad : {"", "/*", "**", "team/**", "Team/*", "team/*/x", "team*", "../x", "team/"}) {
    INFO(bad);
    CHECK(validateRepositoryPattern(bad).code() == Code::kNameInvalid);
  }
  CHECK(repositoryPatternMatches("*", "a"));
  CHECK(repositoryPatternMatches("team/*", "team/a/b"));
  CHECK_FALSE(repositoryPatternMatches("team/*", "team"));
  CHECK_FALSE(repositoryPatternMatches("team/*", "teamx/a"));
  CHECK(repositoryPatternMatches("team/app", "team/app"));
  CHECK_FALSE(repositoryPatternMatches("team/app", "team/app2"));
}

}  // namespace names_test
