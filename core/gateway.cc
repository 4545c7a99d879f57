#include "core/gateway.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <latch>
#include <thread>
#include <vector>

#include "base/log.h"
#include "base/str_cat.h"
#include "base/thread_name.h"
#include "core/audit/writer.h"
#include "core/control_plane.h"
#include "core/heap.h"
#include "core/role_provisioner.h"
#include "core/recording/recorder.h"
#include "core/shard.h"
#include "core/unix_listener.h"

namespace pgb {

namespace {

// Reads and checks the config file again; publishes it if it is valid and
// keeps the listeners where they are.
void Reload(const std::string& config_path, RuntimeStore& runtimes,
            const std::vector<std::unique_ptr<Shard>>& shards, ReloadCounters& counters) {
  // Any return before the publish is a failed reload.
  bool published = false;
  struct Tally {
    ReloadCounters& to;
    const bool& done;
    ~Tally() { (done ? to.ok : to.failed).fetch_add(1); }
  } tally{counters, published};
  PGB_LOG(kInfo) << "SIGHUP: reloading " << config_path;
  absl::StatusOr<Config> config = LoadConfigFile(config_path);
  if (!config.ok()) {
    PGB_LOG(kError) << "reload failed, keeping the running configuration: "
                    << config.status().message();
    return;
  }
  const LogLevel level = config->log_level;
  absl::StatusOr<std::shared_ptr<const Runtime>> next = BuildRuntime(*std::move(config));
  if (!next.ok()) {
    PGB_LOG(kError) << "reload failed, keeping the running configuration: "
                    << next.status().message();
    return;
  }
  if (std::string moved = ListenerChanges(*runtimes.Current(), **next); !moved.empty()) {
    PGB_LOG(kError) << "reload refused, keeping the running configuration: listeners and "
                       "workers change only with a restart ("
                    << moved << ")";
    return;
  }
  SetLogLevel(level);
  StartKeyRefresh(**next);
  StartCatalogReads(**next);  // a reload reads every target's catalog afresh
  const std::shared_ptr<const Runtime> previous = runtimes.Current();
  runtimes.Publish(*std::move(next));
  published = true;
  for (const auto& shard : shards) shard->Wake();
  // The previous keys stop refreshing here, on this thread: their refresher
  // may be inside a fetch (up to http_timeout), and joining it must not fall
  // to the shard thread where the last session of the old Runtime ends.
  // Sessions that logged in with them keep running; new logins use the new keys.
  if (previous->keys) previous->keys->StopRefresher();
  if (previous->catalogs) previous->catalogs->Stop();
  PGB_LOG(kInfo) << "configuration reloaded; new statements and sessions use it";
}

}  // namespace

absl::Status RunGateway(std::shared_ptr<const Runtime> runtime, std::string config_path) {
  // Signals are taken by this thread alone, with sigwait; shards never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  TuneHeapForBursts();

  const int workers = runtime->config.ResolvedWorkers();
  // The audit trail lives as long as the process: a reload does not change
  // it (its settings take a restart).
  std::unique_ptr<audit::AuditTrail> trail;
  if (runtime->config.audit.enabled) {
    absl::StatusOr<std::unique_ptr<audit::AuditTrail>> started =
        audit::AuditTrail::Start(runtime->config.audit, workers);
    if (!started.ok()) {
      return absl::Status(started.status().code(),
                          Cat("audit trail: ", started.status().message()));
    }
    trail = *std::move(started);
  }
  // The session recorder, like the trail, lives as long as the process.
  std::unique_ptr<recording::Recorder> recorder;
  if (runtime->config.recording.enabled) {
    absl::StatusOr<std::unique_ptr<recording::Recorder>> started =
        recording::Recorder::Start(runtime->config.recording, workers);
    if (!started.ok()) {
      if (trail) trail->Stop();
      return absl::Status(started.status().code(),
                          Cat("session recorder: ", started.status().message()));
    }
    recorder = *std::move(started);
  }
  // Unix-domain sockets: bound here once, accepted from by every shard.
  std::vector<std::unique_ptr<UnixListener>> unix_listeners;
  std::vector<int> unix_fds(runtime->listeners.size(), -1);
  for (size_t i = 0; i < runtime->listeners.size(); ++i) {
    if (!runtime->listeners[i].config->local()) continue;
    absl::StatusOr<std::unique_ptr<UnixListener>> opened =
        UnixListener::Open(*runtime->listeners[i].config);
    if (!opened.ok()) {
      if (trail) trail->Stop();
      return absl::Status(opened.status().code(),
                          Cat("listener[", i, "]: ", opened.status().message()));
    }
    unix_fds[i] = (*opened)->fd();
    unix_listeners.push_back(*std::move(opened));
  }
  // The approval store (core/approvals/approval_store.h): its own thread, as
  // long as the process ([approvals] changes take a restart).
  std::unique_ptr<approvals::ApprovalStore> approval_store;
  if (runtime->config.approvals.enabled) {
    absl::StatusOr<std::unique_ptr<approvals::ApprovalStore>> opened =
        approvals::ApprovalStore::Open(runtime->config.approvals.store);
    if (!opened.ok()) {
      if (trail) trail->Stop();
      return opened.status();
    }
    approval_store = *std::move(opened);
  }
  RuntimeStore runtimes(runtime);
  ShardDirectory directory;
  directory.approvals = approval_store.get();
  // Declared before the shards: a session freed with its shard releases its
  // role into the provisioner (Stop has run by then; the janitor takes it).
  std::unique_ptr<RoleProvisioner> provisioner;
  std::vector<std::unique_ptr<Shard>> shards;
  for (int i = 0; i < workers; ++i) {
    shards.push_back(
        std::make_unique<Shard>(i, runtimes, directory, trail ? &trail->shard(i) : nullptr));
    if (recorder) shards.back()->set_recorder(&recorder->shard(i));
    directory.shards.push_back(shards.back().get());
  }
  // Temporary database roles (core/role_provisioner.h): one worker thread,
  // when a target has a provisioning login at start-up. Stopped after the
  // shards (it drops the roles their sessions leave), before they are freed.
  if (std::any_of(runtime->config.targets.begin(), runtime->config.targets.end(),
                  [](const TargetConfig& t) { return !t.provision_user.empty(); })) {
    provisioner = std::make_unique<RoleProvisioner>(runtime->config.roles, [&runtimes] {
      std::vector<ProvisionTarget> targets;
      for (const TargetConfig& t : runtimes.Current()->config.targets) {
        if (!t.provision_user.empty()) targets.push_back(ProvisionTargetOf(t));
      }
      return targets;
    });
    for (auto& shard : shards) shard->set_role_provisioner(provisioner.get());
    provisioner->Start();
  }
  // The control plane (core/control_plane.h): its own threads, listening
  // before any shard does (so that /readyz and the admin socket are there
  // once clients can connect); it reaches the shards only through
  // Shard::Post, which waits for each shard to run. [control] changes take a
  // restart.
  ReloadCounters reloads;
  std::unique_ptr<ControlPlane> control;
  if (runtime->config.control.enabled) {
    absl::StatusOr<std::unique_ptr<ControlPlane>> started = ControlPlane::Start(
        runtime->config.control,
        ControlPlane::Sources{&directory, &runtimes, trail.get(), &reloads, approval_store.get()});
    if (!started.ok()) {
      if (provisioner) provisioner->Stop();
      if (trail) trail->Stop();
      return started.status();
    }
    control = *std::move(started);
  }
  StartKeyRefresh(*runtime);  // before any shard accepts a connection
  StartCatalogReads(*runtime);
  std::vector<absl::Status> init(workers);
  std::latch ready(workers);
  std::latch go(1);
  bool start = false;
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] {
      NameThisThread(Cat("pgb-shard-", i));
      init[i] = shards[i]->Init(unix_fds);  // the ring is created on the thread that uses it
      ready.count_down();
      go.wait();
      if (start) shards[i]->Run();
    });
  }
  ready.wait();
  absl::Status failed;
  for (const absl::Status& s : init) {
    if (!s.ok() && failed.ok()) failed = s;
  }
  start = failed.ok();
  go.count_down();
  if (!start) {
    for (auto& t : threads) t.join();
    if (provisioner) provisioner->Stop();
    if (control) control->Stop();
    if (trail) trail->Stop();
    return failed;
  }
  for (const ListenerRuntime& l : runtime->listeners) {
    PGB_LOG(kInfo) << "listening on " << l.config->Describe()
                   << (l.config->local() ? " (Unix-domain socket)"
                       : l.tls ? (l.config->tls == ListenerTls::kRequired ? " (TLS required)"
                                                                          : " (TLS optional)")
                               : " (no TLS)");
  }
  PGB_LOG(kInfo) << "pgbastion ready: " << workers << " shards, " << runtime->targets.size()
                 << " targets";

  // Wait for signals in a thread of its own so the main thread can join shards.
  std::atomic<bool> all_stopped{false};
  std::thread signal_thread([&] {
    NameThisThread("pgb-signals");
    int requests = 0;
    while (!all_stopped.load()) {
      timespec timeout{0, 200'000'000};
      const int sig = sigtimedwait(&signals, nullptr, &timeout);
      if (sig < 0) continue;
      if (sig == SIGHUP) {
        if (requests == 0) Reload(config_path, runtimes, shards, reloads);
        continue;
      }
      ++requests;
      PGB_LOG(kInfo) << (requests == 1 ? "shutting down (signal again to close sessions at once)"
                                       : "closing all sessions now");
      for (auto& shard : shards) shard->RequestShutdown();
      // New local clients find no socket, as when PostgreSQL has stopped
      // (the shards close what is still queued on it).
      for (auto& l : unix_listeners) l->Unlink();
    }
  });
  for (auto& t : threads) t.join();
  if (control) control->Stop();                // before the shards it asks go away
  if (approval_store) approval_store->Stop();  // withdraws what is still pending
  if (provisioner) provisioner->Stop();
  unix_listeners.clear();    // closes the sockets, removes them and their lock files
  if (recorder) recorder->Stop();  // every chunk the shards handed on
  if (trail) trail->Stop();  // every record the shards wrote, then a final checkpoint
  all_stopped.store(true);
  signal_thread.join();
  PGB_LOG(kInfo) << "pgbastion stopped";
  return absl::OkStatus();
}

}  // namespace pgb
