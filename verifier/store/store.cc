#include "verifier/store/store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vigil::verifier {

bool JoinsPage(size_t item_bytes, size_t max_bytes, size_t& used) {
  // The item's field tag and length prefix beside its bytes.
  const size_t size = item_bytes + 6;
  if (max_bytes != 0 && used != 0 && used + size > max_bytes) return false;
  used += size;
  return true;
}

absl::StatusOr<std::vector<v1::Verdict>> VerdictsInRange(const Store& store,
                                                         int64_t since_unix_nano,
                                                         int64_t until_unix_nano,
                                                         size_t max_verdicts) {
  VerdictQuery query;
  query.since_unix_nano = since_unix_nano;
  query.until_unix_nano = until_unix_nano;
  query.page_size = 1000;
  std::vector<v1::Verdict> out;
  do {
    absl::StatusOr<VerdictPage> page = store.ListVerdicts(query);
    if (!page.ok()) return page.status();
    if (out.size() + page->verdicts.size() > max_verdicts) {
      return absl::ResourceExhaustedError(
          absl::StrCat("more than ", max_verdicts, " verdicts in the range; narrow it"));
    }
    for (v1::Verdict& v : page->verdicts) out.push_back(std::move(v));
    query.page_token = std::move(page->next_page_token);
  } while (!query.page_token.empty());
  std::reverse(out.begin(), out.end());  // pages are newest first
  return out;
}

}  // namespace vigil::verifier
