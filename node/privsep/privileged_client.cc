#include "node/privsep/privileged_client.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "node/privsep/protocol.h"

namespace vigil::node::privsep {
namespace {

absl::Status ProtocolError(const absl::Status& s) {
  return absl::InternalError(absl::StrCat("privileged process: ", s.message()));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> PrivilegedClient::ReadSeccompFilters(int pid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fd_.Valid())
    return absl::UnavailableError("the channel to the privileged process is closed");
  absl::StatusOr<std::vector<std::string>> filters = Exchange(pid);
  // Only the privileged process's own answer keeps the channel in step; after anything else
  // the next packet could belong to this exchange.
  if (!filters.ok() && !reported_) fd_.Reset();
  return filters;
}

absl::StatusOr<std::vector<std::string>> PrivilegedClient::Exchange(int pid) {
  reported_ = false;
  RETURN_IF_ERROR(SendPacket(fd_.Get(), EncodeRequest({.kind = kReadSeccompFilters, .pid = pid})));
  ASSIGN_OR_RETURN(Packet head, ReceivePacket(fd_.Get(), kResponseHeaderBytes + 1));
  absl::StatusOr<ResponseHeader> h = DecodeResponseHeader(head.bytes, head.length);
  if (!h.ok()) return ProtocolError(h.status());
  if (h->code != 0) {
    ASSIGN_OR_RETURN(Packet text, ReceivePacket(fd_.Get(), kMaxErrorBytes));
    reported_ = true;
    return absl::Status(static_cast<absl::StatusCode>(h->code), text.bytes);
  }
  std::vector<std::string> filters;
  filters.reserve(h->parts);
  for (uint32_t i = 0; i < h->parts; ++i) {
    ASSIGN_OR_RETURN(Packet f, ReceivePacket(fd_.Get(), kMaxFilterBytes + 1));
    if (absl::Status s = CheckFilterPacket(f.length); !s.ok()) return ProtocolError(s);
    filters.push_back(std::move(f.bytes));
  }
  return filters;
}

}  // namespace vigil::node::privsep
