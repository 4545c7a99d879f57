// Replay of a session recording (core/recording/format.h): each event as a
// psql user would have seen it (the statement after a prompt, its result as
// an aligned table with the row count, command tags, errors and notices,
// the time each statement took), or as one JSON object per event for
// machines. `pgbastion replay` prints it, paced by the events' timestamps
// or not, and wraps the text in an asciicast v2 file on request.
//
// The input is untrusted (a file from anywhere): every message is parsed
// with bounds checks and a malformed one is shown as such, never trusted.
//
//   ReplayRenderer r(ReplayRenderer::Format::kText);
//   while (auto e = reader.Next()) { std::string out; r.Render(*e, out); fputs(out) }
//   std::string tail; r.Finish(reader, tail);
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/recording/format.h"

namespace pgb::recording {

class ReplayRenderer {
 public:
  enum class Format : uint8_t { kText, kJson };
  explicit ReplayRenderer(Format format) : format_(format) {}

  // Appends what `event` shows (often nothing: rows wait for their table's
  // end) to `out`.
  void Render(const Event& event, std::string& out);
  // What is still pending, and how the recording ended (`reader`'s state).
  void Finish(const RecordingReader& reader, std::string& out);

 private:
  void RenderText(const Event& event, std::string& out);
  void RenderJson(const Event& event, std::string& out);
  void FromClient(std::string_view message, int64_t unix_us, std::string& out);
  void ToClient(std::string_view message, int64_t unix_us, std::string& out);
  void FlushTable(std::string& out);  // the rows, then "(N rows)"
  void PrintRows(std::string& out);   // the rows so far (the header first)
  void Timing(int64_t unix_us, std::string& out);

  const Format format_;
  std::string prompt_ = "=> ";
  // The result being collected: column names, right alignment, rows.
  std::vector<std::string> columns_;
  std::vector<bool> numeric_;
  std::vector<std::vector<std::string>> rows_;
  bool in_table_ = false;
  bool header_printed_ = false;
  uint64_t printed_rows_ = 0;
  uint64_t unrecorded_rows_ = 0;                   // kRows ("statements" mode)
  int64_t statement_us_ = 0;                       // when the statement being answered was sent
  std::map<std::string, std::string> statements_;  // prepared statement name -> text
};

}  // namespace pgb::recording
