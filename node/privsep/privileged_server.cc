#include "node/privsep/privileged_server.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "node/privsep/protocol.h"

namespace vigil::node::privsep {
namespace {

absl::Status SendError(int fd, const absl::Status& error) {
  ResponseHeader h{.code = static_cast<uint32_t>(error.code()), .parts = 1};
  if (absl::Status s = SendPacket(fd, EncodeResponseHeader(h)); !s.ok()) return s;
  absl::string_view text = error.message();
  return SendPacket(fd, text.substr(0, kMaxErrorBytes));
}

absl::Status Answer(int fd, const Packet& packet, const SeccompFilterReader& reader) {
  absl::StatusOr<Request> request = DecodeRequest(packet.bytes, packet.length);
  if (!request.ok()) return SendError(fd, request.status());
  absl::StatusOr<std::vector<std::string>> filters = reader(request->pid);
  if (!filters.ok()) return SendError(fd, filters.status());
  if (filters->size() > kMaxFilters) {
    return SendError(fd, absl::OutOfRangeError(absl::StrCat("pid ", request->pid, " has ",
                                                            filters->size(), " filters")));
  }
  for (const std::string& f : *filters) {
    if (absl::Status s = CheckFilterPacket(f.size()); !s.ok()) return SendError(fd, s);
  }
  ResponseHeader h{.code = 0, .parts = static_cast<uint32_t>(filters->size())};
  if (absl::Status s = SendPacket(fd, EncodeResponseHeader(h)); !s.ok()) return s;
  for (const std::string& f : *filters) {
    if (absl::Status s = SendPacket(fd, f); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

int ServeRequests(int fd, const SeccompFilterReader& reader) {
  for (;;) {
    // One byte more than a request: a longer packet shows as too long, not as a request.
    absl::StatusOr<Packet> packet = ReceivePacket(fd, kRequestBytes + 1);
    if (!packet.ok()) return absl::IsUnavailable(packet.status()) ? 0 : 1;
    if (!Answer(fd, *packet, reader).ok()) return 1;
  }
}

}  // namespace vigil::node::privsep
