// A tiny header-only test harness for the native unit tests, so the build
// needs nothing from outside (no gtest download).
//
//   TEST(SessionIdsAreJsSafe) { EXPECT_EQ(SlotOf(id), 3u); ... }
//   int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
//
// EXPECT* records a failure and goes on; ASSERT* records it and returns from
// the test function (so use it only directly inside a TEST body). A test case
// fails if any of its checks failed. The binary prints one line per case and,
// last, a machine-readable summary for scripts/native-tests.js:
//
//   TESTS passed=N failed=M
//
// and, when ACCEPTPOOL_TEST_REPORT names a file, appends
// "<binary> passed=N failed=M" to it (ctest hides the output of passing
// tests, so the runner reads the counts from there). The exit code is
// non-zero when any case failed. An optional argument runs only the cases
// whose name contains it.
#ifndef ACCEPTPOOL_NATIVE_TESTS_TEST_MAIN_H_
#define ACCEPTPOOL_NATIVE_TESTS_TEST_MAIN_H_

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace acceptpool_test {

struct TestCase {
  const char* name;
  void (*fn)();
};

inline std::vector<TestCase>& Registry() {
  static std::vector<TestCase> tests;
  return tests;
}

// Failures recorded by the test case that is running now.
inline int& CurrentFailures() {
  static int failures = 0;
  return failures;
}

struct Registrar {
  Registrar(const char* name, void (*fn)()) { Registry().push_back({name, fn}); }
};

inline void ReportFailure(const char* file, int line, const std::string& what) {
  ++CurrentFailures();
  std::fprintf(stderr, "  %s:%d: %s\n", file, line, what.c_str());
  std::fflush(stderr);
}

template <typename T>
std::string Show(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}
inline std::string Show(const std::string& value) {
  // Long strings (byte streams) are summarised, not dumped.
  if (value.size() > 64) return "<" + std::to_string(value.size()) + " bytes>";
  return "\"" + value + "\"";
}
inline std::string Show(unsigned char value) { return std::to_string(value); }
inline std::string Show(signed char value) { return std::to_string(value); }
inline std::string Show(bool value) { return value ? "true" : "false"; }
inline std::string Show(std::nullptr_t) { return "nullptr"; }

template <typename A, typename B>
bool CheckEq(const A& a, const B& b, const char* as, const char* bs, const char* file, int line) {
  if (a == b) return true;
  ReportFailure(file, line,
                std::string("EXPECT_EQ(") + as + ", " + bs + "): " + Show(a) + " != " + Show(b));
  return false;
}

template <typename A, typename B>
bool CheckNe(const A& a, const B& b, const char* as, const char* bs, const char* file, int line) {
  if (!(a == b)) return true;
  ReportFailure(file, line, std::string("EXPECT_NE(") + as + ", " + bs + "): both " + Show(a));
  return false;
}

inline int RunAll(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  const char* binary = argc > 0 ? argv[0] : "test";
  if (const char* slash = std::strrchr(binary, '/')) binary = slash + 1;
  int passed = 0;
  int failed = 0;
  for (const TestCase& t : Registry()) {
    if (filter != nullptr && std::strstr(t.name, filter) == nullptr) continue;
    CurrentFailures() = 0;
    auto start = std::chrono::steady_clock::now();
    t.fn();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    if (CurrentFailures() == 0) {
      ++passed;
      std::printf("ok   %s (%lld ms)\n", t.name, static_cast<long long>(ms));
    } else {
      ++failed;
      std::printf("FAIL %s (%d failed checks)\n", t.name, CurrentFailures());
    }
    std::fflush(stdout);
  }
  std::printf("TESTS passed=%d failed=%d\n", passed, failed);
  std::fflush(stdout);
  if (const char* report = std::getenv("ACCEPTPOOL_TEST_REPORT")) {
    if (report[0] != '\0') {
      if (FILE* f = std::fopen(report, "a")) {
        std::fprintf(f, "%s passed=%d failed=%d\n", binary, passed, failed);
        std::fclose(f);
      }
    }
  }
  return failed == 0 && passed > 0 ? 0 : 1;
}

}  // namespace acceptpool_test

#define ACCEPTPOOL_TEST_CONCAT_(a, b) a##b
#define ACCEPTPOOL_TEST_CONCAT(a, b) ACCEPTPOOL_TEST_CONCAT_(a, b)

#define TEST(name)                                                                            \
  static void name();                                                                         \
  static ::acceptpool_test::Registrar ACCEPTPOOL_TEST_CONCAT(name, _registrar)(#name, &name); \
  static void name()

#define EXPECT(cond)                                                                           \
  ((cond) ? true                                                                               \
          : (::acceptpool_test::ReportFailure(__FILE__, __LINE__, "EXPECT(" #cond ") failed"), \
             false))
#define EXPECT_EQ(a, b) ::acceptpool_test::CheckEq((a), (b), #a, #b, __FILE__, __LINE__)
#define EXPECT_NE(a, b) ::acceptpool_test::CheckNe((a), (b), #a, #b, __FILE__, __LINE__)
#define EXPECT_TRUE(cond) EXPECT(cond)
#define EXPECT_FALSE(cond) EXPECT(!(cond))

#define ASSERT(cond)           \
  do {                         \
    if (!EXPECT(cond)) return; \
  } while (0)
#define ASSERT_EQ(a, b)           \
  do {                            \
    if (!EXPECT_EQ(a, b)) return; \
  } while (0)

// Records a failure with a message built from stream operands.
#define FAIL_MSG(stream_expr)                                                         \
  do {                                                                                \
    std::ostringstream acceptpool_test_msg_;                                          \
    acceptpool_test_msg_ << stream_expr;                                              \
    ::acceptpool_test::ReportFailure(__FILE__, __LINE__, acceptpool_test_msg_.str()); \
  } while (0)

#endif  // ACCEPTPOOL_NATIVE_TESTS_TEST_MAIN_H_
