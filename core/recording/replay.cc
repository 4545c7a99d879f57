#include "core/recording/replay.h"

#include <simdjson.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "base/json_text.h"
#include "base/str_cat.h"
#include "base/utf8.h"
#include "proto/data_row_rewrite.h"
#include "proto/messages.h"
#include "proto/protocol.h"
#include "proto/wire.h"

namespace pgb::recording {

namespace {

// Result tables keep at most this many rows in memory before printing them
// (psql itself buffers a whole result; a recording may hold millions).
constexpr size_t kMaxBufferedRows = 10000;

bool NumericType(uint32_t oid) {
  switch (oid) {
    case 20:
    case 21:
    case 23:
    case 26:
    case 700:
    case 701:
    case 1700:  // int8..numeric
      return true;
    default:
      return false;
  }
}

// Display width: UTF-8 code points (close enough for an aligned table).
size_t Width(std::string_view s) {
  size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}

std::string Printable(std::string_view s) {
  // Control characters other than newline and tab would drive the
  // terminal of whoever replays a hostile recording.
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

void Pad(std::string& out, size_t n) { out.append(n, ' '); }

const char* KindName(uint8_t kind) {
  switch (kind) {
    case kHeader:
      return "header";
    case kFromClient:
      return "from_client";
    case kToClient:
      return "to_client";
    case kRows:
      return "rows";
    case kGap:
      return "gap";
    case kTruncated:
      return "truncated";
    case kEnd:
      return "end";
  }
  return "unknown";
}

// A JSON object from the recording itself (header, gap, end): passed through
// only if it looks like one; otherwise as a string (never invalid JSON out).
void AppendJsonObjectOrString(std::string_view text, std::string& out) {
  static thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (text.size() >= 2 && text.front() == '{' && text.back() == '}' &&
      std::none_of(text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }) &&
      parser.parse(text.data(), text.size()).get(doc) == simdjson::SUCCESS && doc.is_object()) {
    out += text;
  } else {
    AppendJsonString(text, &out);
  }
}

}  // namespace

void ReplayRenderer::Render(const Event& e, std::string& out) {
  if (format_ == Format::kJson) {
    RenderJson(e, out);
  } else {
    RenderText(e, out);
  }
}

void ReplayRenderer::RenderJson(const Event& e, std::string& out) {
  out += Cat("{\"time_us\":", e.unix_us, ",\"kind\":\"", KindName(e.kind), "\"");
  switch (e.kind) {
    case kHeader:
    case kGap:
    case kTruncated:
    case kEnd:
      out += ",\"data\":";
      AppendJsonObjectOrString(e.payload, out);
      break;
    case kRows:
      if (e.payload.size() == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(e.payload[i]);
        out += Cat(",\"rows\":", n);
      }
      break;
    case kFromClient:
    case kToClient: {
      if (e.payload.size() < 5) {
        out += ",\"malformed\":true";
        break;
      }
      const char type = e.payload[0];
      out += ",\"type\":";
      AppendJsonString(std::string_view(&type, 1), &out);
      const std::string_view body = std::string_view(e.payload).substr(5);
      proto::Cursor c(body);
      if (e.kind == kFromClient && type == proto::kPqMsg_Query) {
        if (auto q = proto::ParseQuery(body); q.ok()) {
          out += ",\"sql\":";
          AppendJsonString(*q, &out);
        }
      } else if (e.kind == kFromClient && type == proto::kPqMsg_Parse) {
        std::string_view name, sql;
        if (c.ReadCString(&name) && c.ReadCString(&sql)) {
          out += ",\"statement\":";
          AppendJsonString(name, &out);
          out += ",\"sql\":";
          AppendJsonString(sql, &out);
        }
      } else if (e.kind == kToClient && type == proto::kPqMsg_RowDescription) {
        if (auto fields = proto::ParseRowDescription(e.payload); fields.ok()) {
          out += ",\"columns\":[";
          for (size_t i = 0; i < fields->size(); ++i) {
            if (i > 0) out += ',';
            AppendJsonString((*fields)[i].name, &out);
          }
          out += ']';
        }
      } else if (e.kind == kToClient && type == proto::kPqMsg_DataRow) {
        uint16_t n = 0;
        std::string values = ",\"values\":[";
        bool ok = c.ReadUint16(&n);
        for (uint16_t i = 0; ok && i < n; ++i) {
          int32_t len = 0;
          std::string_view v;
          if (!c.ReadInt32(&len)) {
            ok = false;
          } else if (i > 0) {
            values += ',';
          }
          if (!ok) break;
          if (len < 0) {
            values += "null";
          } else if (c.ReadBytes(static_cast<size_t>(len), &v)) {
            AppendJsonString(v, &values);
          } else {
            ok = false;
          }
        }
        if (ok) out += values + "]";
      } else if (e.kind == kToClient && type == proto::kPqMsg_CommandComplete) {
        std::string_view tag;
        if (c.ReadCString(&tag)) {
          out += ",\"tag\":";
          AppendJsonString(tag, &out);
        }
      } else if (e.kind == kToClient &&
                 (type == proto::kPqMsg_ErrorResponse || type == proto::kPqMsg_NoticeResponse)) {
        if (auto f = proto::ParseErrorFields(body); f.ok()) {
          out += ",\"severity\":";
          AppendJsonString(f->severity, &out);
          out += ",\"sqlstate\":";
          AppendJsonString(f->sqlstate, &out);
          out += ",\"message\":";
          AppendJsonString(f->message, &out);
        }
      } else if (type == proto::kPqMsg_CopyData) {
        out += ",\"data\":";
        AppendJsonString(body, &out);
      }
      break;
    }
    default:
      break;
  }
  out += "}\n";
}

void ReplayRenderer::RenderText(const Event& e, std::string& out) {
  switch (e.kind) {
    case kHeader: {
      // The target's name makes the prompt, as psql's is the database's.
      static thread_local simdjson::dom::parser parser;
      simdjson::dom::element doc;
      std::string_view target;
      const std::string_view h = e.payload;
      if (parser.parse(h.data(), h.size()).get(doc) == simdjson::SUCCESS &&
          doc["target"].get_string().get(target) == simdjson::SUCCESS) {
        prompt_ = Printable(target) + "=> ";
      }
      out += "-- recording: " + Printable(h) + "\n";
      break;
    }
    case kFromClient:
      if (e.payload.size() >= 5) FromClient(e.payload, e.unix_us, out);
      break;
    case kToClient:
      if (e.payload.size() >= 5) ToClient(e.payload, e.unix_us, out);
      break;
    case kRows:
      if (e.payload.size() == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(e.payload[i]);
        unrecorded_rows_ += n;
      }
      break;
    case kGap:
      FlushTable(out);
      out += "-- GAP in the recording: " + Printable(e.payload) + "\n";
      break;
    case kTruncated:
      FlushTable(out);
      out +=
          "-- the recording was TRUNCATED here (session_max_bytes): " + Printable(e.payload) + "\n";
      break;
    case kEnd:
      FlushTable(out);
      out += "-- session ended: " + Printable(e.payload) + "\n";
      break;
    default:
      break;
  }
}

void ReplayRenderer::FromClient(std::string_view m, int64_t unix_us, std::string& out) {
  const char type = m[0];
  const std::string_view body = m.substr(5);
  proto::Cursor c(body);
  switch (type) {
    case proto::kPqMsg_Query: {
      FlushTable(out);
      statement_us_ = unix_us;
      absl::StatusOr<std::string_view> q = proto::ParseQuery(body);
      out += prompt_ + (q.ok() ? Printable(*q) : std::string("(malformed Query)")) + "\n";
      break;
    }
    case proto::kPqMsg_Parse: {
      std::string_view name, sql;
      if (c.ReadCString(&name) && c.ReadCString(&sql)) {
        statements_[std::string(name)] = std::string(sql);
        if (statements_.size() > 10000) statements_.clear();  // bounded, whatever the file says
      }
      break;
    }
    case proto::kPqMsg_Bind: {
      std::string_view portal, name;
      if (!c.ReadCString(&portal) || !c.ReadCString(&name)) break;
      FlushTable(out);
      statement_us_ = unix_us;
      auto it = statements_.find(std::string(name));
      out += prompt_ + (it != statements_.end() ? Printable(it->second) : "(unknown statement)");
      uint16_t formats = 0, params = 0;
      std::string_view skip;
      if (c.ReadUint16(&formats) && c.ReadBytes(2u * formats, &skip) && c.ReadUint16(&params) &&
          params > 0) {
        out += "   -- parameters:";
        for (uint16_t i = 0; i < params; ++i) {
          int32_t len = 0;
          std::string_view v;
          if (!c.ReadInt32(&len)) break;
          if (len < 0) {
            out += Cat(" $", i + 1, "=NULL");
          } else if (c.ReadBytes(static_cast<size_t>(len), &v)) {
            out += Cat(" $", i + 1, "='", Printable(v), "'");
          } else {
            break;
          }
        }
      }
      out += "\n";
      break;
    }
    case proto::kPqMsg_CopyData:
      out += Printable(body);
      break;
    case proto::kPqMsg_Terminate:
      FlushTable(out);
      out += "\\q\n";
      break;
    default:
      break;
  }
}

void ReplayRenderer::Timing(int64_t unix_us, std::string& out) {
  if (statement_us_ == 0) return;
  char t[48];
  std::snprintf(t, sizeof(t), "Time: %.3f ms\n",
                static_cast<double>(unix_us - statement_us_) / 1000.0);
  out += t;
}

void ReplayRenderer::ToClient(std::string_view m, int64_t unix_us, std::string& out) {
  const char type = m[0];
  const std::string_view body = m.substr(5);
  proto::Cursor c(body);
  switch (type) {
    case proto::kPqMsg_RowDescription: {
      FlushTable(out);
      absl::StatusOr<std::vector<proto::ResultField>> fields = proto::ParseRowDescription(m);
      if (!fields.ok()) {
        out += "(malformed RowDescription)\n";
        break;
      }
      in_table_ = true;
      for (const proto::ResultField& f : *fields) {
        columns_.push_back(Printable(f.name));
        numeric_.push_back(NumericType(f.type_oid));
      }
      break;
    }
    case proto::kPqMsg_DataRow: {
      uint16_t n = 0;
      if (!c.ReadUint16(&n)) break;
      std::vector<std::string> row;
      for (uint16_t i = 0; i < n; ++i) {
        int32_t len = 0;
        std::string_view v;
        if (!c.ReadInt32(&len)) break;
        if (len < 0) {
          row.emplace_back();
        } else if (c.ReadBytes(static_cast<size_t>(len), &v)) {
          row.push_back(IsValidUtf8(v) ? Printable(v) : Hex(v));
        } else {
          break;
        }
      }
      if (!in_table_) {
        in_table_ = true;  // rows without a description (an Execute of a described portal)
      }
      rows_.push_back(std::move(row));
      // Print what is here and go on (widths may differ between parts).
      if (rows_.size() >= kMaxBufferedRows) PrintRows(out);
      break;
    }
    case proto::kPqMsg_CommandComplete: {
      std::string_view tag;
      if (!c.ReadCString(&tag)) break;
      if (in_table_) {
        FlushTable(out);
        unrecorded_rows_ = 0;
      } else if (unrecorded_rows_ != 0) {
        out += Cat("(", unrecorded_rows_, unrecorded_rows_ == 1 ? " row" : " rows",
                   ", not recorded)\n");
        unrecorded_rows_ = 0;
      } else {
        out += Printable(tag) + "\n";
      }
      Timing(unix_us, out);
      break;
    }
    case proto::kPqMsg_ErrorResponse:
    case proto::kPqMsg_NoticeResponse: {
      FlushTable(out);
      absl::StatusOr<proto::ErrorFields> f = proto::ParseErrorFields(body);
      if (!f.ok()) {
        out += "(malformed ErrorResponse or NoticeResponse)\n";
        break;
      }
      out += Printable(f->severity) + ":  " + Printable(f->message) + "\n";
      if (!f->detail.empty()) out += "DETAIL:  " + Printable(f->detail) + "\n";
      if (!f->hint.empty()) out += "HINT:  " + Printable(f->hint) + "\n";
      if (type == proto::kPqMsg_ErrorResponse) Timing(unix_us, out);
      break;
    }
    case proto::kPqMsg_CopyData:
      out += Printable(body);
      break;
    case proto::kPqMsg_ReadyForQuery:
      FlushTable(out);
      statement_us_ = 0;
      break;
    default:
      break;
  }
}

void ReplayRenderer::PrintRows(std::string& out) {
  const size_t ncols = columns_.size();
  std::vector<size_t> width(ncols, 0);
  for (size_t i = 0; i < ncols; ++i) width[i] = Width(columns_[i]);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size() && i < ncols; ++i) {
      width[i] = std::max(width[i], Width(row[i]));
    }
  }
  if (!header_printed_ && ncols > 0) {
    // Header: names centred, as psql does.
    for (size_t i = 0; i < ncols; ++i) {
      const size_t w = Width(columns_[i]);
      const size_t left = (width[i] - w) / 2;
      out += i == 0 ? " " : " | ";
      Pad(out, left);
      out += columns_[i];
      Pad(out, width[i] - w - left);
    }
    out += " \n";
    for (size_t i = 0; i < ncols; ++i) {
      out += i == 0 ? "-" : "-+-";
      out.append(width[i], '-');
    }
    out += "-\n";
    header_printed_ = true;
  }
  const std::string empty;
  for (const auto& row : rows_) {
    for (size_t i = 0; i < ncols; ++i) {
      const std::string& v = i < row.size() ? row[i] : empty;
      out += i == 0 ? " " : " | ";
      const size_t w = Width(v);
      if (numeric_[i]) Pad(out, width[i] - w);
      out += v;
      if (!numeric_[i] && i + 1 < ncols) Pad(out, width[i] - w);
    }
    out += "\n";
  }
  printed_rows_ += rows_.size();
  rows_.clear();
}

void ReplayRenderer::FlushTable(std::string& out) {
  if (!in_table_) return;
  in_table_ = false;
  PrintRows(out);
  out += Cat("(", printed_rows_, printed_rows_ == 1 ? " row)\n\n" : " rows)\n\n");
  columns_.clear();
  numeric_.clear();
  printed_rows_ = 0;
  header_printed_ = false;
}

void ReplayRenderer::Finish(const RecordingReader& reader, std::string& out) {
  if (format_ == Format::kJson) {
    out += Cat("{\"kind\":\"summary\",\"chunks\":", reader.chunks(),
               ",\"interrupted\":", reader.interrupted() ? "true" : "false",
               ",\"ok\":", reader.status().ok() ? "true" : "false");
    if (!reader.status().ok()) {
      out += ",\"error\":";
      AppendJsonString(std::string(reader.status().message()), &out);
    }
    out += "}\n";
    return;
  }
  FlushTable(out);
  if (reader.interrupted()) {
    out +=
        "-- the recording ends here without its end marker: the gateway stopped (a crash?) "
        "before the session ended; shown up to its last whole chunk\n";
  }
}

}  // namespace pgb::recording
