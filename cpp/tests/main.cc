// Runs every registered case; exit code 0 only if all checks held and nothing threw.
#include <cstdio>
#include <exception>

#include "check.h"

int main() {
  int failed_cases = 0;
  for (const check::Case& c : check::cases()) {
    const int before = check::failures();
    try {
      c.fn();
    } catch (const std::exception& e) {
      check::fail(__FILE__, __LINE__, std::string(c.name) + " threw: " + e.what());
    }
    const bool ok = check::failures() == before;
    failed_cases += !ok;
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", c.name);
  }
  const int total = static_cast<int>(check::cases().size());
  std::printf("%d passed, %d failed\n", total - failed_cases, failed_cases);
  return failed_cases == 0 && total > 0 ? 0 : 1;
}
