#include "verifier/measured_batches.h"

namespace vigil::verifier {

void MeasuredBatches::AddMeasured(const std::string& digest, uint64_t recnum) {
  if (!entries_.emplace(digest, Entry{recnum, State::kPending}).second) return;
  ++pending_;
  pending_order_.push_back(digest);
  Changed(digest);
  while (pending_ > kMaxPending && !pending_order_.empty()) {
    std::string oldest = std::move(pending_order_.front());
    pending_order_.pop_front();
    auto it = entries_.find(oldest);
    // Taken or delivered since: no longer the pending set's to forget.
    if (it == entries_.end() || it->second.state != State::kPending) continue;
    entries_.erase(it);
    --pending_;
    Changed(oldest);
  }
}

bool MeasuredBatches::Take(const std::string& digest, uint64_t* recnum) {
  auto it = entries_.find(digest);
  if (it == entries_.end() || it->second.state != State::kPending) return false;
  it->second.state = State::kDelivering;
  --pending_;
  *recnum = it->second.recnum;
  // Not a change to write: in delivery is written as pending.
  return true;
}

void MeasuredBatches::Settle(const std::string& digest, bool stored) {
  auto it = entries_.find(digest);
  if (it == entries_.end() || it->second.state != State::kDelivering) return;
  if (!stored) {
    it->second.state = State::kPending;
    ++pending_;
    pending_order_.push_back(digest);
    return;
  }
  it->second.state = State::kDelivered;
  ++delivered_;
  delivered_order_.push_back(digest);
  Changed(digest);
  while (delivered_ > kMaxDelivered && !delivered_order_.empty()) {
    std::string oldest = std::move(delivered_order_.front());
    delivered_order_.pop_front();
    auto old = entries_.find(oldest);
    if (old == entries_.end() || old->second.state != State::kDelivered) continue;
    entries_.erase(old);
    --delivered_;
    Changed(oldest);
  }
}

const MeasuredBatches::Entry* MeasuredBatches::Find(const std::string& digest) const {
  auto it = entries_.find(digest);
  return it == entries_.end() ? nullptr : &it->second;
}

void MeasuredBatches::Restore(const std::string& digest, uint64_t recnum, bool delivered) {
  const State state = delivered ? State::kDelivered : State::kPending;
  if (!entries_.emplace(digest, Entry{recnum, state}).second) return;
  if (delivered) {
    ++delivered_;
    delivered_order_.push_back(digest);
  } else {
    ++pending_;
    pending_order_.push_back(digest);
  }
}

std::vector<MeasuredBatches::Change> MeasuredBatches::Changes() const {
  std::vector<Change> out;
  out.reserve(changed_.size());
  for (const auto& [digest, generation] : changed_) {
    Change c{digest, std::nullopt, generation};
    if (const Entry* e = Find(digest); e != nullptr) {
      c.entry = *e;
      if (c.entry->state == State::kDelivering) c.entry->state = State::kPending;
    }
    out.push_back(std::move(c));
  }
  return out;
}

void MeasuredBatches::Written(const std::vector<Change>& changes) {
  for (const Change& c : changes) {
    auto it = changed_.find(c.digest);
    if (it != changed_.end() && it->second <= c.generation) changed_.erase(it);
  }
}

}  // namespace vigil::verifier
