#pragma once

// The node registry's PostgreSQL storage (NodeRegistry::OpenPostgres) and what it shares
// with the SQLite storage in node_registry.cc.

#include <cstdint>
#include <map>
#include <memory>
#include <pqxx/connection>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "verifier/node_registry.h"

namespace vigil::verifier {

namespace registry_internal {

/// log_pcrs: per PCR of the current epoch's replay, its index (4 bytes, big endian) and value.
std::string EncodePcrs(const std::map<uint32_t, Sha256Digest>& pcrs);
absl::StatusOr<std::map<uint32_t, Sha256Digest>> DecodePcrs(std::string_view bytes);
/// A node's state with its AK parsed.
absl::StatusOr<std::shared_ptr<NodeState>> MakeState(EnrolledNode node);

}  // namespace registry_internal

/// The registry's connection to PostgreSQL (used under NodeRegistry::db_mu_), reopened when
/// the server dropped it.
struct NodeRegistry::PgBackend {
  std::string url;
  std::unique_ptr<pqxx::connection> connection;
};

}  // namespace vigil::verifier
