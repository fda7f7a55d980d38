#pragma once

#include <pqxx/connection>

#include "absl/status/status.h"

namespace vigil::verifier::pg {

/// The schema version this build writes (the PostgreSQL numbering; see docs/store.md).
inline constexpr int kSchemaVersion = 5;

/// Applies the pending versioned migrations in one transaction, under an advisory lock so
/// replicas starting together take turns (the first applies them, the others find them
/// applied). FAILED_PRECONDITION for a database newer than this build.
absl::Status MigrateSchema(pqxx::connection& connection);

}  // namespace vigil::verifier::pg
