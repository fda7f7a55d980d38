#pragma once

// The verifier's result store is the SQLite Store (verifier/store/sqlite_store.h); this
// name is kept for the code that knew it as the result store.
#include "verifier/store/sqlite_store.h"

namespace vigil::verifier {

using ResultsStore = SqliteStore;

}  // namespace vigil::verifier
