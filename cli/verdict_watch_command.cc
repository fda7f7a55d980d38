#include "cli/verdict_watch_command.h"

#include <unistd.h>

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/fleet_client.h"
#include "cli/fleet_format.h"
#include "cli/table.h"
#include "cli/time_flags.h"

namespace vigil::cli {

std::string FormatChange(const v1::VerdictChange& change, bool color) {
  auto status = [&](v1::TrustStatus s) {
    return color ? Colorize(StatusName(s), StatusColor(s)) : StatusName(s);
  };
  std::string why = "-";
  if (change.workload_id().empty()) {
    if (!change.verdict().reasons().empty())
      why = absl::StrJoin(ReasonNames(change.verdict()), ",");
  } else {
    for (const v1::WorkloadVerdict& w : change.verdict().workloads()) {
      if (w.workload_id() == change.workload_id()) why = FailingRulesSummary(w);
    }
  }
  std::string workload = "-";
  if (!change.workload_id().empty()) {
    workload =
        change.workload_name().empty() ? ShortId(change.workload_id()) : change.workload_name();
  }
  return absl::StrCat(change.cursor(), "  ", FormatUnixNano(change.verdict().appraised_unix_nano()),
                      "  ", ShortId(change.node_id()), "  ", workload, "  ",
                      status(change.previous_status()), " -> ", status(change.status()), "  ", why);
}

int RunWatch(const WatchOptions& options, std::ostream& out, std::ostream& err) {
  std::unique_ptr<FleetClient> client = FleetClient::Connect(options.connection, err);
  if (client == nullptr) return kExitUsage;
  const bool color = !options.json && ShouldColor(STDOUT_FILENO);
  std::string cursor = options.cursor;
  int printed = 0;
  absl::Duration backoff = options.initial_backoff;
  while (true) {
    grpc::ClientContext ctx;
    v1::WatchVerdictsRequest request;
    request.set_cursor(cursor);
    request.set_node_id(options.node_id);
    std::unique_ptr<grpc::ClientReader<v1::VerdictChange>> reader =
        client->stub().WatchVerdicts(&ctx, request);
    v1::VerdictChange change;
    while (reader->Read(&change)) {
      out << (options.json ? ProtoJson(change, /*pretty=*/false) : FormatChange(change, color))
          << std::endl;
      cursor = change.cursor();
      backoff = options.initial_backoff;
      if (options.max_changes > 0 && ++printed >= options.max_changes) {
        ctx.TryCancel();
        reader->Finish();
        return kExitOk;
      }
    }
    const grpc::Status st = reader->Finish();
    // UNAVAILABLE: the verifier is down or closing its watches; CANCELLED: the call was cut
    // by the server (a verifier shutting down cancels what is still open; this client
    // cancels only after max_changes, returning above). Both are worth a reconnect.
    if (!st.ok() && st.error_code() != grpc::StatusCode::UNAVAILABLE &&
        st.error_code() != grpc::StatusCode::CANCELLED) {
      return client->Fail(err, "WatchVerdicts", st);
    }
    err << "vigilctl: "
        << (st.ok() ? "the verifier closed the stream" : client->Describe("WatchVerdicts", st))
        << "; reconnecting in " << absl::FormatDuration(backoff)
        << (cursor.empty() ? std::string() : " after cursor " + cursor) << std::endl;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, options.max_backoff);
  }
}

void RegisterWatchCommand(CLI::App& app, int* exit_code) {
  auto options = std::make_shared<WatchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "watch",
      "Stream status changes until interrupted, each with the cursor to resume from; reconnects "
      "when the verifier becomes unavailable");
  cmd->add_option("--node", options->node_id, "only this node's changes")->check(NodeIdValidator());
  cmd->add_option("--cursor", options->cursor,
                  "resume after this cursor (printed first on each line); default: changes from "
                  "now on");
  cmd->add_flag("--json", options->json,
                "print each VerdictChange as proto3 JSON, one object per line");
  cmd->add_option("--max-changes", options->max_changes,
                  "exit after this many changes (default: watch until interrupted)")
      ->check(CLI::Range(1, 1 << 30));
  AddFleetConnectionFlags(cmd, &options->connection);
  cmd->callback([options, exit_code] { *exit_code = RunWatch(*options, std::cout, std::cerr); });
}

}  // namespace vigil::cli
