// What every fuzz target uses to check a promise: require(expression) aborts, which libFuzzer
// reports as a crash with the input saved, and names the promise broken
// ("fuzz/<target>.cpp:<line>: broken promise: <expression>"). A macro, for the expression's text.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace asynchttp::fuzz {

[[gnu::cold]] inline void brokenPromise(const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: broken promise: %s\n", file, line, what);
  std::abort();
}

}  // namespace asynchttp::fuzz

#define require(ok) ((ok) ? void() : ::asynchttp::fuzz::brokenPromise(__FILE__, __LINE__, #ok))
