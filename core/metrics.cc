#include "core/metrics.h"

#include <vector>

#include "base/prometheus_text.h"
#include "policy/rules.h"

namespace pgb {
namespace {

std::vector<double> BoundsSeconds() {
  std::vector<double> bounds;
  for (int64_t ns : LatencyHistogram::kBoundsNs) bounds.push_back(static_cast<double>(ns) / 1e9);
  return bounds;
}

void WriteHistogram(PrometheusText& text, std::string_view name, std::string_view help,
                    const LatencyHistogram& h) {
  static const std::vector<double> bounds = BoundsSeconds();
  text.Family(name, "histogram", help);
  text.Histogram(name, {}, bounds, h.counts, static_cast<double>(h.sum_ns) / 1e9);
}

// A family of one sample without labels.
template <typename T>
void One(PrometheusText& text, std::string_view name, std::string_view type, std::string_view help,
         T value) {
  text.Family(name, type, help);
  text.Sample(name, {}, value);
}

}  // namespace

void ShardMetrics::MergeInto(ShardMetrics& total) const {
  total.connections_accepted += connections_accepted;
  for (size_t m = 0; m < logins.size(); ++m) {
    for (size_t o = 0; o < logins[m].size(); ++o) total.logins[m][o] += logins[m][o];
  }
  for (const auto& [key, count] : sessions_started) total.sessions_started[key] += count;
  statements.MergeInto(total.statements);
  total.masked_values += masked_values;
  total.bytes_from_client += bytes_from_client;
  total.bytes_from_backend += bytes_from_backend;
  total.sessions_ended_by_operator += sessions_ended_by_operator;
  gate_latency.MergeInto(total.gate_latency);
  backend_connect.MergeInto(total.backend_connect);
}

std::string FormatMetrics(const ShardMetrics& total, const ScrapeExtras& extras) {
  PrometheusText text;
  text.Family("pgbastion_build_info", "gauge", "The running gateway's version (always 1).");
  text.Sample("pgbastion_build_info", {{"version", extras.version}}, uint64_t{1});
  text.Family("pgbastion_shards", "gauge",
              "Worker threads (shards), and those that answered this scrape.");
  text.Sample("pgbastion_shards", {{"state", "running"}}, static_cast<uint64_t>(extras.shards));
  text.Sample("pgbastion_shards", {{"state", "answered"}},
              static_cast<uint64_t>(extras.shards_answered));

  One(text, "pgbastion_client_connections_total", "counter", "Client connections accepted.",
      total.connections_accepted);
  One(text, "pgbastion_client_connections", "gauge",
      "Client connections open now (logging in or in a session).", extras.connections_open);
  text.Family("pgbastion_sessions", "gauge", "Sessions open now, by target and scope.");
  for (const auto& [key, count] : extras.sessions_open) {
    text.Sample("pgbastion_sessions", {{"target", key.first}, {"scope", key.second}}, count);
  }
  text.Family("pgbastion_sessions_total", "counter",
              "Sessions established (logged in on both sides), by target and scope.");
  for (const auto& [key, count] : total.sessions_started) {
    text.Sample("pgbastion_sessions_total", {{"target", key.first}, {"scope", key.second}}, count);
  }
  One(text, "pgbastion_sessions_ended_by_operator_total", "counter",
      "Sessions ended with `pgbastion sessions end`.", total.sessions_ended_by_operator);

  text.Family("pgbastion_logins_total", "counter",
              "Client logins by method and outcome (success; bad_credential: a wrong password, "
              "proof, token or certificate; refused: any other failure).");
  for (size_t m = 0; m < kLoginMethodNames.size(); ++m) {
    for (size_t o = 0; o < kLoginOutcomeNames.size(); ++o) {
      // Without a credential there is no success to count.
      if (m == kLoginMethodNames.size() - 1 && o == 0) continue;
      text.Sample("pgbastion_logins_total",
                  {{"method", kLoginMethodNames[m]}, {"outcome", kLoginOutcomeNames[o]}},
                  total.logins[m][o]);
    }
  }

  text.Family("pgbastion_statements_total", "counter",
              "Statements judged, by decision, statement class and the rule that decided.");
  absl::flat_hash_map<std::string, uint64_t> refusals;
  total.statements.ForEach([&](const StatementCounts::Key& key, uint64_t count) {
    const auto kind = static_cast<policy::Decision::Kind>(key.decision);
    text.Sample("pgbastion_statements_total",
                {{"decision", policy::DecisionKindName(kind)},
                 {"class", key.statement_class},
                 {"rule", key.rule}},
                count);
    if (kind != policy::Decision::kAllow) refusals[key.rule] += count;
  });
  text.Family("pgbastion_refusals_total", "counter", "Statements refused, by rule.");
  for (const auto& [rule, count] : refusals) {
    text.Sample("pgbastion_refusals_total", {{"rule", rule}}, count);
  }
  One(text, "pgbastion_masked_values_total", "counter", "Values masked in results.",
      total.masked_values);
  text.Family("pgbastion_relayed_bytes_total", "counter",
              "Bytes relayed in sessions, as received from each side (database bytes before "
              "masking).");
  text.Sample("pgbastion_relayed_bytes_total", {{"from", "client"}}, total.bytes_from_client);
  text.Sample("pgbastion_relayed_bytes_total", {{"from", "database"}}, total.bytes_from_backend);
  WriteHistogram(text, "pgbastion_statement_gate_seconds",
                 "Latency the gateway adds to a client message with statements: from the moment "
                 "its shard picks the message up until it is judged and queued for the database.",
                 total.gate_latency);
  WriteHistogram(text, "pgbastion_backend_connect_seconds",
                 "Time from connecting to the database to the end of the gateway's login there.",
                 total.backend_connect);

  One(text, "pgbastion_login_throttle_failures_total", "counter",
      "Failed logins counted by the login throttle.", extras.throttle_failures);
  One(text, "pgbastion_login_throttle_delayed_total", "counter",
      "Login attempts the throttle made wait.", extras.throttle_delayed);
  One(text, "pgbastion_login_throttle_delay_seconds_total", "counter",
      "The waits the login throttle imposed, summed.",
      static_cast<double>(extras.throttle_delay_ns) / 1e9);
  One(text, "pgbastion_login_throttle_bursts_total", "counter",
      "Times a client address or user name became throttled.", extras.throttle_bursts);
  One(text, "pgbastion_login_throttle_evicted_total", "counter",
      "Throttle entries dropped because a table was full.", extras.throttle_evicted);
  One(text, "pgbastion_login_throttle_tracked", "gauge",
      "Addresses and user names the login throttle tracks now.", extras.throttle_tracked);

  if (extras.audit) {
    One(text, "pgbastion_audit_healthy", "gauge",
        "1 while the audit trail accepts records (sinks and spill writable).",
        uint64_t{extras.audit_healthy ? 1u : 0u});
    One(text, "pgbastion_audit_queue_depth", "gauge",
        "Audit records waiting in the shards' rings for the writer.", extras.audit_queue_depth);
    One(text, "pgbastion_audit_records_written_total", "counter",
        "Audit lines handed to the sinks (checkpoints included).", extras.audit_records_written);
    One(text, "pgbastion_audit_records_lost_total", "counter",
        "Audit records lost (a full ring, or a full spill in fail-open mode); each loss "
        "is also reported in the trail.",
        extras.audit_records_lost);
    One(text, "pgbastion_audit_spilled_bytes", "gauge",
        "Bytes waiting in the sinks' spill queues on disk.", extras.audit_spilled_bytes);
    One(text, "pgbastion_audit_sink_errors_total", "counter", "Failed deliveries to audit sinks.",
        extras.audit_sink_errors);
  }
  text.Family("pgbastion_reloads_total", "counter", "Configuration reloads, by outcome.");
  text.Sample("pgbastion_reloads_total", {{"outcome", "success"}}, extras.reloads_ok);
  text.Sample("pgbastion_reloads_total", {{"outcome", "failure"}}, extras.reloads_failed);
  text.Family("pgbastion_target_up", "gauge",
              "1 if the target accepted a TCP connection at the last readiness check.");
  for (const auto& [name, up] : extras.targets_up) {
    text.Sample("pgbastion_target_up", {{"target", name}}, uint64_t{up ? 1u : 0u});
  }
  return text.Take();
}

}  // namespace pgb
