// Fuzzes the configuration parser (core/config.h) with arbitrary TOML text.
// ParseConfig must never crash, throw or leak; errors are fine. When it
// accepts the text, the Config must satisfy what docs/configuration.md and
// the rest of the gateway rely on (ranges, unique names, resolvable targets,
// verifiers that proto::ParseScramVerifier accepts as core/runtime.cc needs).
//
// ParseConfig reads the files the text names (password_file, TLS files) and
// environment variables (password_env). Relative paths resolve against a
// scratch directory made at start-up, holding a 0600 "password" file, and
// PGB_FUZZ_PASSWORD is set, so both success paths are reachable. The binary is
// linked with -Wl,--wrap=open (tests/fuzz/CMakeLists.txt): opens of anything
// but a regular file or directory fail with EACCES, so an input naming a FIFO
// cannot hang the fuzzer and one naming a device cannot touch it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "core/config.h"
#include "proto/scram.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int __real_open(const char* path, int flags, ...);

extern "C" int __wrap_open(const char* path, int flags, ...) {
  mode_t mode = 0;
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list args;
    va_start(args, flags);
    mode = static_cast<mode_t>(va_arg(args, int));
    va_end(args);
  }
  struct stat st;
  if (::stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    errno = EACCES;
    return -1;
  }
  return __real_open(path, flags, mode);
}

namespace {

std::string& ScratchDir() {
  static std::string dir;
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  char dir_template[] = "/tmp/pgb-config-fuzz-XXXXXX";
  FUZZ_CHECK(::mkdtemp(dir_template) != nullptr);
  ScratchDir() = dir_template;
  const std::string password_file = ScratchDir() + "/password";
  const int fd = ::open(password_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(::write(fd, "secret\n", 7) == 7);
  ::close(fd);
  FUZZ_CHECK(::setenv("PGB_FUZZ_PASSWORD", "secret", 1) == 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<pgb::Config> config = pgb::ParseConfig(text, "fuzz.toml", ScratchDir());
  if (!config.ok()) {
    FUZZ_CHECK(!config.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(config->workers >= 0 && config->workers <= 1024);
  FUZZ_CHECK(config->max_message_size >= 1024 && config->max_message_size <= 0x3fffffff);
  std::set<std::string> names;
  for (const pgb::TargetConfig& target : config->targets) {
    FUZZ_CHECK(!target.name.empty() && target.name.size() <= 63);
    FUZZ_CHECK(names.insert(target.name).second);
    FUZZ_CHECK(config->FindTarget(target.name) == &target);
    FUZZ_CHECK(!target.host.empty() && !target.user.empty() && !target.database.empty());
    FUZZ_CHECK(target.port != 0);
  }
  names.clear();
  for (const pgb::UserConfig& user : config->users) {
    FUZZ_CHECK(!user.name.empty() && user.name.size() <= 63);
    FUZZ_CHECK(names.insert(user.name).second);
    FUZZ_CHECK(config->FindUser(user.name) == &user);
    for (const std::string& target : user.targets) {
      FUZZ_CHECK(config->FindTarget(target) != nullptr);
    }
    // core/runtime.cc refuses to start when this fails: check-config must agree.
    FUZZ_CHECK(pgb::proto::ParseScramVerifier(user.scram_verifier).ok());
  }
  for (const pgb::ListenerConfig& listener : config->listeners) {
    FUZZ_CHECK(listener.port != 0);
    if (listener.tls != pgb::ListenerTls::kDisabled) {
      FUZZ_CHECK(!listener.tls_cert_file.empty() && !listener.tls_key_file.empty());
    }
  }
  return 0;
}
