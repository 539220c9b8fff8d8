// Random identifiers from the kernel's CSPRNG.
#pragma once

#include <string>

namespace wharf {

// A random RFC 4122 version 4 UUID in lower-case canonical form.
std::string newUuid();
// True if s is a lower-case canonical UUID (36 chars, hex and dashes). Upload ids are
// checked with this before they touch a path.
bool isUuid(const std::string& s);
// A short id for a request, unique within the process's life and unlikely to repeat
// across restarts ("<8 hex of this process>-<sequence in hex>"). Thread-safe, cheap.
std::string newRequestId();
// n random bytes.
std::string randomBytes(size_t n);

}  // namespace wharf
