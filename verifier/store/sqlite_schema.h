#pragma once

#include <sqlite3.h>

#include "absl/status/status.h"

namespace vigil::verifier::sqlite {

/// The schema version this build writes.
inline constexpr int kStoreSchemaVersion = 5;

/// Brings the store's tables to kStoreSchemaVersion: reads the version (schema_migrations,
/// or results_schema for a file written before it existed), refuses a newer one
/// (FAILED_PRECONDITION) and runs every later migration in order, all in one transaction.
absl::Status MigrateStoreSchema(sqlite3* db);

}  // namespace vigil::verifier::sqlite
