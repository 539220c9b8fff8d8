// Tests use the tools' blocking HTTP client.
#pragma once

#include "shared/http/blocking_client.h"

namespace wharf::test {
using HttpClient = BlockingClient;
using HttpResponse = ::wharf::HttpResponse;
using HeaderList = ::wharf::HeaderList;
}  // namespace wharf::test
