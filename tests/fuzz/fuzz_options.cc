// Linked into every fuzz target: undefined behaviour stops the run (the libraries are
// built with recoverable UBSan checks, which would only print), so libFuzzer keeps the
// input as a crash.
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }
