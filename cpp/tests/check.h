// A tiny test harness (no external framework: CI installs from PyPI/Debian only).
// TEST_CASE(name) { ... } registers a case; CHECK records a failure and goes on;
// CHECK_THROWS expects an exception type whose message contains a substring.
#pragma once

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace check {

struct Case {
  const char* name;
  void (*fn)();
};

inline std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}

inline int& failures() {
  static int n = 0;
  return n;
}

struct Register {
  Register(const char* name, void (*fn)()) { cases().push_back({name, fn}); }
};

inline void fail(const char* file, int line, const std::string& what) {
  ++failures();
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

}  // namespace check

#define TEST_CASE(name)                                          \
  static void name();                                            \
  static const ::check::Register register_##name(#name, &name); \
  static void name()

#define CHECK(cond)                                     \
  do {                                                  \
    if (!(cond)) ::check::fail(__FILE__, __LINE__, #cond); \
  } while (0)

#define CHECK_THROWS(Ex, expr, substr)                                                          \
  do {                                                                                          \
    bool caught_ = false;                                                                       \
    try {                                                                                       \
      (void)(expr);                                                                             \
    } catch (const Ex& e_) {                                                                    \
      caught_ = true;                                                                           \
      if (!std::strstr(e_.what(), substr))                                                      \
        ::check::fail(__FILE__, __LINE__,                                                       \
                      std::string(#expr " threw '") + e_.what() + "', expected '" + substr + "'"); \
    }                                                                                           \
    if (!caught_) ::check::fail(__FILE__, __LINE__, #expr " did not throw " #Ex);             \
  } while (0)
