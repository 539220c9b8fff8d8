// The HTTP/1.1 server in-process, driven over real sockets.
#include <catch2/catch.hpp>
