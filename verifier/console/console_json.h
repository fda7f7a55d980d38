#pragma once

// The JSON the console's script reads: what the Fleet API answers, shaped for the page.
// Every string is data for textContent, never markup.

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "vigil/v1/fleet.pb.h"

namespace vigil::verifier::console {

/// "affirming" for TRUST_AFFIRMING ("unknown" for none yet).
std::string StatusName(v1::TrustStatus status);

/// One fleet-table row per node: id, hostname, enrolled/connected/revoked, status, last
/// report (ms since the epoch), workloads with their statuses, and the failing rules
/// (deduplicated by workload and rule) with their controls.
nlohmann::json NodeRow(const v1::NodeSummary& node);

/// {"nodes": [NodeRow...], "now_ms": `now_ms`}.
nlohmann::json FleetJson(const v1::ListNodesResponse& nodes, int64_t now_ms);

/// One verdict for the timeline: time, status, reasons, detail, failing rules, policies,
/// whether it came from the node's spool, and the evidence digest.
nlohmann::json VerdictJson(const v1::Verdict& verdict);

/// A node's detail: its row, enrollment, EK trust, policies, and `history` (newest first)
/// as VerdictJson entries.
nlohmann::json NodeDetailJson(const v1::GetNodeResponse& node,
                              const v1::ListVerdictsResponse& history, int64_t now_ms);

/// A status change as the event stream sends it.
nlohmann::json ChangeJson(const v1::VerdictChange& change);

}  // namespace vigil::verifier::console
