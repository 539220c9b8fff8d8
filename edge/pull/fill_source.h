// FillSource: a response body that tails a Fill — bytes go out as they arrive, and a
// failed fill aborts the response.
#pragma once

#include <memory>

#include "edge/cache/fill_coordinator.h"
#include "shared/http/message.h"

namespace wharf {

class FillSource : public BodySource, public std::enable_shared_from_this<FillSource> {
 public:
  // Serves [offset, offset + length) of the blob; length 0 = to the end.
  FillSource(Loop& loop, std::shared_ptr<Fill> fill, uint64_t offset = 0, uint64_t length = 0)
      : loop_(loop), fill_(std::move(fill)), offset_(offset), end_(length == 0 ? 0 : offset + length) {}
  ~FillSource() override;

  void next(std::function<void(Status, Piece)> cb) override;
  std::optional<uint64_t> length() const override;

 private:
  void answer(const Fill::Event& e, std::function<void(Status, Piece)> cb);
  Loop& loop_;
  std::shared_ptr<Fill> fill_;
  uint64_t offset_;
  uint64_t end_;
  uint64_t subscription_ = 0;
};

}  // namespace wharf
