// Fuzzes what `pgbastion replay`, `recordings list` and `audit verify
// --recordings` read from a recordings directory, which anyone with access to
// it may have written: RecordingReader (core/recording/format.h), the content
// digest, and both renderings of ReplayRenderer (core/recording/replay.h).
//
// Invariants: nothing crashes, leaks or reads out of bounds; a reader that
// stops with an error stops for good; the digest agrees with the reader on
// the content length and on whether the file is cut short; the JSON rendering
// is one line per event; the text rendering never carries a control
// character other than newline and tab (a hostile recording must not drive
// the terminal of whoever replays it).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/recording/format.h"
#include "core/recording/replay.h"
#include "tests/fuzz/fuzz_check.h"

using namespace pgb::recording;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Inputs either start with the real magic (byte 0 even) or are taken as
  // they are: most mutations would otherwise die at the magic.
  std::string file;
  if (size > 0 && (data[0] & 1) == 0) {
    file.assign(kMagic);
    file.append(reinterpret_cast<const char*>(data) + 1, size - 1);
  } else {
    file.assign(reinterpret_cast<const char*>(data), size);
  }
  RecordingReader reader(file);
  ReplayRenderer text(ReplayRenderer::Format::kText);
  ReplayRenderer json(ReplayRenderer::Format::kJson);
  size_t events = 0;
  std::string out_text, out_json;
  while (auto e = reader.Next()) {
    ++events;
    FUZZ_CHECK((e->kind & kContinues) == 0);
    text.Render(*e, out_text);
    json.Render(*e, out_json);
  }
  FUZZ_CHECK(!reader.Next().has_value());
  text.Finish(reader, out_text);
  json.Finish(reader, out_json);
  size_t lines = 0;
  for (char c : out_json) lines += c == '\n';
  FUZZ_CHECK(lines == events + 1);
  for (char c : out_text) {
    const unsigned char u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u >= 0x20 || c == '\n' || c == '\t');
    FUZZ_CHECK(u != 0x7f);
  }
  ContentDigest digest;
  const absl::Status s = DigestRecording(file, &digest);
  if (s.ok() && reader.status().ok()) {
    FUZZ_CHECK(digest.bytes == reader.content_bytes());
    FUZZ_CHECK(digest.sha256_hex.size() == 64);
  }
  return 0;
}
