#include "edge/pull/fill_source.h"

namespace wharf {

FillSource::~FillSource() {
  if (subscription_ != 0) fill_->unsubscribe(subscription_);
}

std::optional<uint64_t> FillSource::length() const {
  if (end_ != 0) return end_ - offset_;
  if (fill_->expectedSize() != 0) return fill_->expectedSize() - offset_;
  return std::nullopt;
}

void FillSource::answer(const Fill::Event& e, std::function<void(Status, Piece)> cb) {
  if (e.state == Fill::State::kFailed) return cb(e.error.isOk() ? Status(Code::kUnavailable, "fill failed") : e.error, {});
  bool verified = e.verified || e.state == Fill::State::kDone;
  uint64_t limit = end_ != 0 ? std::min(end_, e.available) : e.available;
  // The response's last byte waits for the verification of the whole blob: a client
  // holding every byte of a Content-Length takes the body as complete, and a fill that
  // fails verification must leave it short (the connection closes).
  uint64_t last = end_ != 0 ? end_ : fill_->expectedSize();
  if (!verified && last != 0 && limit >= last) limit = last - 1;
  if (limit > offset_) {
    Piece p;
    p.file = FileBody{fill_->reader(), offset_, std::min<uint64_t>(limit - offset_, 8u << 20)};
    offset_ += p.file.length;
    p.end = verified && ((end_ != 0 && offset_ == end_) || (end_ == 0 && offset_ == e.available));
    return cb(Status::ok(), std::move(p));
  }
  if (verified && (end_ == 0 || offset_ >= end_)) {
    Piece p;
    p.end = true;
    return cb(Status::ok(), std::move(p));
  }
  // Nothing new yet: answer on the fill's next step.
  auto self = shared_from_this();
  auto once = std::make_shared<std::function<void(Status, Piece)>>(std::move(cb));
  subscription_ = fill_->subscribe(loop_, [self, once](const Fill::Event& ev) {
    if (!*once) return;
    if (self->subscription_ != 0) {
      self->fill_->unsubscribe(self->subscription_);
      self->subscription_ = 0;
    }
    auto fn = std::move(*once);
    *once = nullptr;
    self->answer(ev, std::move(fn));
  });
}

void FillSource::next(std::function<void(Status, Piece)> cb) { answer(fill_->current(), std::move(cb)); }

}  // namespace wharf
