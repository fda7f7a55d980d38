#include "verifier/measured_batches.h"

namespace vigil::verifier {

bool MeasuredBatches::AddMeasured(const std::string& digest, uint64_t recnum) {
  if (!entries_.emplace(digest, Entry{recnum, State::kPending}).second) return false;
  ++pending_;
  pending_order_.push_back(digest);
  Changed(digest);
  ForgetOldest(State::kPending, kMaxPending, pending_order_, pending_);
  return true;
}

void MeasuredBatches::ForgetOldest(State state, size_t max, std::deque<std::string>& order,
                                   size_t& count) {
  while (count > max && !order.empty()) {
    std::string oldest = std::move(order.front());
    order.pop_front();
    auto it = entries_.find(oldest);
    // In another state since (taken, delivered): not this set's to forget.
    if (it == entries_.end() || it->second.state != state) continue;
    entries_.erase(it);
    --count;
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
  ForgetOldest(State::kDelivered, kMaxDelivered, delivered_order_, delivered_);
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
