#pragma once

// The policies a verifier starts with: those stored by earlier runs and PutPolicy calls,
// merged with the --policy files given on the command line.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/policy/policy.h"
#include "verifier/store/store.h"

namespace vigil::verifier {

/// Reads every policy of `paths` (YAML files, or directories whose *.yaml and *.yml files
/// are read in name order) and merges them with the policies in `store` (null: none):
///
/// - a policy only in the files, or at a greater revision there, is stored (with an audit
///   record by "vigil-verifier --policy") and used;
/// - the same name and revision with the same content is already there;
/// - the same name and revision with different content is an error (raise the revision);
/// - a stored revision greater than the file's wins, with a warning in the log.
///
/// Any parse error fails the whole load with every error's file, line and column, and
/// nothing is stored. Returns the policies to appraise under, in name order.
absl::StatusOr<std::vector<policy::Policy>> LoadStartupPolicies(
    Store* store, const std::vector<std::string>& paths);

}  // namespace vigil::verifier
