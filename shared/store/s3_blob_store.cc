// The S3 blob store (layout in blob_store.h).
//
// Uploads: S3 objects cannot be appended to, so an upload is a multipart upload in
// parts of part_size, plus the bytes after the last part (the tail). Between requests
// the tail is an object of its own and the state object lists the parts: any replica can
// take the next chunk. Within a request the tail grows in memory and becomes a part
// whenever it reaches part_size; the part goes to the store on a sender thread while the
// next one arrives (at most kPartsInFlight per upload, so a 5 GiB blob never sits in
// memory; at most kMaxSendingParts in the store, beyond which a request sends its part
// itself). At the end a small upload is checked in memory and PUT under its digest; a
// large one is completed, checked (as it arrived, or by reading it back), and only then
// named under its digest. Nothing is visible under a content address before its bytes
// were checked.
//
// Blobs are stored by reference: the parts are assembled into contents/<id>, and
// blobs/<digest> becomes an empty object whose metadata names contents/<id> and the
// size, where a copy of the bytes would cost the store as much again (each replica keeps
// what it looked up). A request that announces its length (Content-Length) and holds the
// whole upload from its first byte (skopeo's, podman's and buildah's PATCH, containerd's
// PUT) is streamed as one PUT of contents/<id>: no parts, no assembly, the store's
// cheapest write. Should more bytes follow the streamed ones, contents/<id> becomes part
// 1 of a multipart upload of uploads/<id>/data (UploadPartCopy), copied under the digest
// at the end. (Layout 1, or a store that keeps no metadata: parts are assembled into
// uploads/<id>/data, streamed bytes are uploads/<id>/whole, and blobs are copied under
// their digest: CopyObject, UploadPartCopy above 5 GiB.)
#include <atomic>
#include <deque>
#include <future>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "shared/base/log.h"
#include "shared/base/ids.h"
#include "shared/event/work_queue.h"
#include "shared/store/blob_store.h"
#include "shared/store/s3_client.h"

namespace wharf {
namespace {

constexpr uint64_t kMinPart = 5ull << 20;        // S3's smallest part but the last
constexpr uint64_t kMaxCopy = 5ull << 30;        // CopyObject's largest source
constexpr uint64_t kCopyPart = 1ull << 30;       // parts of a larger copy
constexpr size_t kMaxParts = 10000;              // S3's limit per multipart upload
constexpr size_t kMaxOpenUploads = 256;          // uploads whose tail this replica keeps
constexpr size_t kPartsInFlight = 2;             // parts of one upload on their way at once
constexpr size_t kMaxSendingParts = 16;          // parts of all uploads on their way at once
constexpr size_t kSpareBuffers = 4;              // part buffers kept for the next parts
constexpr size_t kSmallTail = 1 << 20;           // a tail this large gets a whole part's buffer
constexpr size_t kMaxLocated = 100000;           // blobs whose place a replica remembers
// The layout of a new store (blobs by reference). A store of the layout before
// (kBlobStoreLayoutTag) is used as it is, blobs copied, until upgradeS3BlobStoreLayout;
// a core that knows only that one refuses the store from then on.
constexpr const char* kS3LayoutTag = "wharf-blobstore-s3 2";
// The metadata of a blob stored by reference: its bytes' object and size.
constexpr const char* kContentsHeader = "x-amz-meta-wharf-contents";
constexpr const char* kSizeHeader = "x-amz-meta-wharf-size";

struct Part {
  int number = 0;
  std::string etag;
  uint64_t size = 0;
};

// Writes the layout file of a store of the layout this build writes.
Status putLayout(S3Client& s3) {
  S3Client::Call put;
  put.method = "PUT";
  put.key = "layout";
  std::string body = std::string(kS3LayoutTag) + "\n";
  put.body = body;
  return s3.call(put).status();
}

// The tag a layout file holds.
std::string layoutTag(std::string body) {
  while (!body.empty() && body.back() == '\n') body.pop_back();
  return body;
}

// What the state object records.
struct UploadState {
  uint64_t size = 0;
  uint64_t whole = 0;           // bytes [0, whole) are the object wholeKey() names
  bool whole_in_contents = false;  // ... contents/<id> (else uploads/<id>/whole, layout 1)
  bool whole_in_parts = false;  // ... and were copied as part 1 (parts then hold them)
  std::string multipart;  // S3's upload id for dataKey(); "" before the first part
  bool parts_in_contents = false;  // the multipart upload is of contents/<id> (else uploads/<id>/data)
  std::vector<Part> parts;
  std::string tail_key;   // object holding the bytes after the parts; "" if none
  std::string committing; // the digest contents/<id> is being stored under by reference

  uint64_t partsSize() const {
    uint64_t n = 0;
    for (const auto& p : parts) n += p.size;
    return n;
  }
  // Bytes stored in the whole object and the parts; the tail holds the rest.
  uint64_t storedSize() const { return partsSize() + (whole_in_parts ? 0 : whole); }
  // Only the whole object: the upload is that object, nothing to assemble.
  bool wholeOnly() const { return whole > 0 && !whole_in_parts && parts.empty(); }
  std::string toJson() const {
    nlohmann::json j = {{"size", size},   {"multipart", multipart}, {"tail", tail_key}, {"whole", whole},
                        {"whole_in_parts", whole_in_parts}, {"parts", nlohmann::json::array()}};
    if (!committing.empty()) j["committing"] = committing;
    if (whole_in_contents) j["whole_in_contents"] = true;
    if (parts_in_contents) j["parts_in_contents"] = true;
    for (const auto& p : parts) j["parts"].push_back({{"n", p.number}, {"etag", p.etag}, {"size", p.size}});
    return j.dump();
  }
  static Result<UploadState> fromJson(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    UploadState s;
    if (j.is_discarded() || !j.is_object() || !j.value("size", nlohmann::json()).is_number_unsigned() ||
        !j.value("parts", nlohmann::json()).is_array()) {
      return Status(Code::kCorruption, "upload state is not valid");
    }
    s.size = j["size"].get<uint64_t>();
    s.multipart = j.value("multipart", "");
    s.tail_key = j.value("tail", "");
    if (j.contains("whole") && !j["whole"].is_number_unsigned()) return Status(Code::kCorruption, "upload state whole is not valid");
    s.whole = j.value("whole", uint64_t{0});
    s.whole_in_parts = j.value("whole_in_parts", false);
    if (j.contains("committing") && !j["committing"].is_string()) return Status(Code::kCorruption, "upload state committing is not valid");
    s.committing = j.value("committing", "");
    s.whole_in_contents = j.value("whole_in_contents", false);
    s.parts_in_contents = j.value("parts_in_contents", false);
    if (s.whole_in_contents && s.parts_in_contents) return Status(Code::kCorruption, "upload state names contents twice");
    for (const auto& p : j["parts"]) {
      if (!p.is_object() || !p.value("n", nlohmann::json()).is_number_integer() ||
          !p.value("size", nlohmann::json()).is_number_unsigned()) {
        return Status(Code::kCorruption, "upload state part is not valid");
      }
      s.parts.push_back(Part{p["n"].get<int>(), p.value("etag", ""), p["size"].get<uint64_t>()});
    }
    if (s.storedSize() > s.size) return Status(Code::kCorruption, "upload state parts exceed its size");
    return s;
  }
};

// A part on its way to the store; its ETag (or the failure) comes from a sender thread.
struct SendingPart {
  int number = 0;
  uint64_t size = 0;
  std::future<Result<std::string>> etag;
};

// An upload this replica is writing. Used by one request at a time (the upload's lease).
struct OpenUpload {
  UploadState state;         // as it will be stored at the next flush (size counts every byte taken)
  std::string stored_tail;   // the tail object the stored state names
  std::string stored_etag;   // the ETag of the state object as this replica last wrote it
  std::deque<SendingPart> sending;  // parts after state.parts, oldest first
  // The multipart upload's id while its start is on its way (sent with the first part, on
  // a sender thread); state.multipart once every part was waited for.
  std::shared_future<Result<std::string>> starting;
  std::string tail;          // bytes after the parts, under one part
  std::unique_ptr<S3Client::StreamedPut> streaming;  // the announced bytes on their way to contents/<id>
  std::unique_ptr<S3Client::StreamedPut> part_stream;  // the next part, streamed as the tail grows (all of it)
  bool dirty = false;        // appended since the last flush
  bool completed = false;    // the multipart upload is assembled into dataKey()

  // Waits for every part on its way (what they did no longer matters).
  ~OpenUpload() {
    for (auto& p : sending) p.etag.wait();
  }
};

class S3BlobStore final : public BlobStore {
 public:
  explicit S3BlobStore(const S3Location& loc) : s3_(loc) {}

  bool hasFiles() const override { return false; }
  std::string describe() const override { return s3_.location().display; }

  static std::string blobKey(const Digest& d) {
    return "blobs/" + std::string(d.algorithmName()) + "/" + d.hex().substr(0, 2) + "/" + d.hex();
  }
  static std::string uploadKey(const std::string& id, const std::string& what) { return "uploads/" + id + "/" + what; }
  static std::string contentsKey(const std::string& id) { return "contents/" + id; }
  // The object holding an upload's streamed first bytes.
  static std::string wholeKey(const std::string& id, const UploadState& s) {
    return s.whole_in_contents ? contentsKey(id) : uploadKey(id, "whole");
  }
  // The object an upload's parts are assembled into.
  static std::string dataKey(const std::string& id, const UploadState& s) {
    return s.parts_in_contents ? contentsKey(id) : uploadKey(id, "data");
  }

  Result<BlobFile> open(const Digest& digest) override {
    auto n = size(digest);
    if (!n.isOk()) return n.status();
    return BlobFile{nullptr, *n};
  }

  Result<uint64_t> size(const Digest& digest) override {
    // Asked of the store every time: whether a blob exists decides what a push sends.
    auto at = locate(digest);
    if (!at.isOk()) return at.status();
    return at->size;
  }

  Status read(const Digest& digest, uint64_t offset, char* out, size_t len) override {
    // From where this replica knows the bytes are: a reference it saw, else the name.
    auto known = located(digest);
    Status st = s3_.readRange(known ? known->key : blobKey(digest), offset, out, len);
    if (st.isOk() || (!known && st.code() == Code::kNotFound)) {
      return st.isOk() ? st : Status(Code::kBlobUnknown, "blob unknown to registry");
    }
    // Gone from there (collected, maybe pushed again since), or a name that holds no
    // bytes (a reference this replica has not seen): asked of the store.
    if (known) unlocate(digest);
    auto at = locate(digest);
    if (!at.isOk()) return at.status();
    if (!known && at->key == blobKey(digest)) return st;  // the name's own bytes failed
    st = s3_.readRange(at->key, offset, out, len);
    return st.code() == Code::kNotFound ? Status(Code::kBlobUnknown, "blob unknown to registry") : st;
  }

  std::optional<std::string> directUrl(const Digest& digest, int64_t ttl_s) override {
    if (auto known = located(digest)) return s3_.presignedGet(known->key, ttl_s);
    auto at = locate(digest);
    if (!at.isOk()) return std::nullopt;
    return s3_.presignedGet(at->key, ttl_s);
  }

  Result<Digest> put(std::string_view data, DigestAlgorithm algorithm) override {
    Digest d = digestOf(data, algorithm);
    auto exists = locate(d);
    if (exists.isOk()) return d;
    if (exists.status().code() != Code::kBlobUnknown) return exists.status();
    S3Client::Call c;
    c.method = "PUT";
    c.key = blobKey(d);
    c.body = data;
    auto r = s3_.call(c);
    if (!r.isOk()) return r.status();
    return d;
  }

  Status remove(const Digest& digest, bool) override {
    auto at = locate(digest);
    if (!at.isOk()) return at.status();
    unlocate(digest);
    if (at->key == blobKey(digest)) return deleteKey(at->key);
    // Stored by reference: the name first (a failure in between leaves bytes nothing
    // names, never a name without its bytes), under a marker that finishRemovals()
    // finds should the bytes' removal not happen.
    const std::string marker = "removing/" + at->key.substr(std::string_view("contents/").size());
    S3Client::Call mark;
    mark.method = "PUT";
    mark.key = marker;
    const std::string name = digest.str();
    mark.body = name;
    if (auto r = s3_.call(mark); !r.isOk()) return r.status();
    WHARF_RETURN_IF_ERROR(deleteKey(blobKey(digest)));
    WHARF_RETURN_IF_ERROR(deleteKey(at->key));
    return deleteKey(marker);
  }

  Result<Finished> finishRemovals(int64_t before_ms) override {
    std::vector<S3Client::Listed> markers;
    WHARF_RETURN_IF_ERROR(s3_.list("removing/", [&](const S3Client::Listed& l) {
      if (l.mtime_ms < before_ms) markers.push_back(l);
      return true;
    }));
    Finished done;
    for (const auto& m : markers) {
      const std::string id = m.key.substr(std::string_view("removing/").size());
      if (!isUuid(id)) continue;
      S3Client::Call get;
      get.key = m.key;
      auto r = s3_.send(get);
      if (!r.isOk()) return r.status();
      if (r->status == 404) continue;
      if (r->status != 200) return S3Client::errorOf(*r, "GET " + m.key);
      // A name that still names the bytes: the removal never began (a crash after the
      // marker); the blob stays, for a collection to remove again if nothing wants it.
      if (auto d = Digest::parse(r->body); d.isOk()) {
        auto at = locate(*d);
        if (!at.isOk() && at.status().code() != Code::kBlobUnknown) return at.status();
        if (at.isOk() && at->key == contentsKey(id)) {
          WHARF_RETURN_IF_ERROR(deleteKey(m.key));
          continue;
        }
      }
      int64_t size = -1;
      WHARF_RETURN_IF_ERROR(s3_.list(contentsKey(id), [&](const S3Client::Listed& l) {
        if (l.key == contentsKey(id)) size = static_cast<int64_t>(l.size);
        return true;
      }));
      if (size >= 0) {
        WHARF_RETURN_IF_ERROR(deleteKey(contentsKey(id)));
        ++done.blobs;
        done.bytes += static_cast<uint64_t>(size);
      }
      WHARF_RETURN_IF_ERROR(deleteKey(m.key));
    }
    return done;
  }

  void forEachBlob(const std::function<bool(const Digest&, uint64_t, int64_t)>& fn) override {
    Status st = s3_.list("blobs/", [&](const S3Client::Listed& l) {
      // blobs/<algorithm>/<2>/<hex>
      auto parts = splitKey(l.key);
      if (parts.size() != 4) return true;
      auto d = Digest::parse(parts[1] + ":" + parts[3]);
      if (!d.isOk() || blobKey(*d) != l.key) return true;
      return fn(*d, l.size, l.mtime_ms);
    });
    if (!st.isOk()) logWarn("cannot list the S3 blob store", {{"store", describe()}, {"error", st.message()}});
  }

  Status createUpload(const std::string& id) override {
    auto u = std::make_shared<OpenUpload>();
    auto etag = putState(id, u->state);
    if (!etag.isOk()) return etag.status();
    u->stored_etag = std::move(etag).value();
    remember(id, u);
    return Status::ok();
  }

  Result<uint64_t> uploadSize(const std::string& id) override {
    auto stored = loadState(id);
    if (!stored.isOk()) return stored.status();
    return stored->size;
  }

  Result<uint64_t> resumeUpload(const std::string& id) override {
    // What this replica holds stands if the state object is still the one it wrote (a
    // HEAD, where reading the state back costs a GET).
    if (auto held = find(id); held && !held->dirty && !held->completed && !held->streaming && !held->stored_etag.empty()) {
      S3Client::Call c;
      c.method = "HEAD";
      c.key = uploadKey(id, "state");
      auto r = s3_.send(c);
      if (r.isOk() && r->status == 200 && r->header("etag") == held->stored_etag) return held->state.size;
    }
    auto stored = loadState(id);
    if (!stored.isOk()) {
      forget(id);
      return stored.status();
    }
    // A request starts here: what this replica holds in memory stands only if it was
    // flushed and nothing happened elsewhere since (another replica may have taken chunks
    // in between).
    std::shared_ptr<OpenUpload> dropped;  // waits for its parts on their way, unlocked
    std::lock_guard lock(mu_);
    if (auto it = open_.find(id); it != open_.end()) {
      const auto& u = *it->second;
      // (Its whole state: a commit cut short elsewhere may have marked it committing.)
      if (u.dirty || u.completed || u.stored_tail != stored->tail_key || u.state.toJson() != stored->toJson()) {
        dropped = std::move(it->second);
        open_.erase(it);
      }
    }
    return stored->size;
  }

  void announceAppend(const std::string& id, uint64_t offset, uint64_t length) override {
    // Streamed: an empty upload and at least a part's worth (smaller ones are kept in
    // memory and stored in one PUT at the end anyway), up to S3's largest single PUT.
    if (!streaming_ || offset != 0 || length < s3_.location().part_size || length > kMaxCopy) return;
    auto u = openUpload(id);
    if (!u.isOk()) return;
    OpenUpload& up = **u;
    if (up.completed || up.streaming || up.state.size != 0 || !up.state.multipart.empty() || up.state.whole != 0 ||
        !up.sending.empty()) {
      return;
    }
    up.state.whole_in_contents = references_;
    auto put = s3_.startPut(wholeKey(id, up.state), length);
    if (!put.isOk()) {
      // The parts will meet the same store: their failure is the request's.
      logWarn("cannot start a streamed S3 upload; the upload goes on in parts", {{"upload", id}, {"error", put.status().message()}});
      return;
    }
    up.streaming = std::move(put).value();
  }

  Status append(const std::string& id, uint64_t offset, std::string_view data) override {
    auto u = openUpload(id);
    if (!u.isOk()) return u.status();
    OpenUpload& up = **u;
    if (up.completed) return Status(Code::kBlobUploadInvalid, "the upload was already assembled");
    if (up.state.size != offset) {
      forget(id);
      return Status(Code::kRangeInvalid, "the upload holds " + std::to_string(up.state.size) + " bytes, not " +
                                             std::to_string(offset));
    }
    up.state.size += data.size();
    up.dirty = true;
    if (up.streaming) {
      size_t take = std::min<uint64_t>(data.size(), up.streaming->length() - up.streaming->written());
      Status st = up.streaming->write(data.substr(0, take));
      data.remove_prefix(take);
      if (st.isOk() && up.streaming->written() == up.streaming->length()) {
        auto etag = up.streaming->finish();
        if (etag.isOk()) {
          up.state.whole = up.streaming->length();
          up.streaming.reset();
        } else {
          st = etag.status();
        }
      }
      if (!st.isOk()) {
        forget(id);  // the stored state is the truth again; the store keeps no part of the put
        return st;
      }
    }
    const uint64_t part = s3_.location().part_size;
    while (!data.empty()) {
      size_t take = std::min<uint64_t>(data.size(), part - up.tail.size());
      if (up.tail.capacity() < part && up.tail.size() + take > kSmallTail) {
        std::string buffer = takeBuffer();
        buffer.append(up.tail);
        up.tail.swap(buffer);
      }
      up.tail.append(data.substr(0, take));
      // A stream that fails is dropped: the tail holds its bytes, sent once full.
      if (up.part_stream && !up.part_stream->write(data.substr(0, take)).isOk()) up.part_stream.reset();
      data.remove_prefix(take);
      if (up.tail.size() < part) {
        streamPart(id, up);
        break;
      }
      Status st = up.part_stream ? finishStreamedPart(id, up) : sendPart(id, up, std::exchange(up.tail, std::string()));
      if (!st.isOk()) {
        forget(id);  // the stored state is the truth again
        return st;
      }
    }
    return Status::ok();
  }

  Status flushUpload(const std::string& id) override {
    std::shared_ptr<OpenUpload> u = find(id);
    if (!u || !u->dirty) return Status::ok();
    Status st = flush(id, *u);
    if (!st.isOk()) forget(id);
    return st;
  }

  Result<uint64_t> commitUpload(const std::string& id, const Digest& expected, const Digest* known) override {
    auto opened = openUpload(id);
    if (!opened.isOk()) return opened.status();
    auto u = *opened;
    if (u->streaming) {
      forget(id);
      return Status(Code::kBlobUploadInvalid, "the upload's announced bytes did not all arrive");
    }
    const uint64_t size = u->state.size;
    if (u->state.parts.empty() && u->sending.empty() && u->state.whole == 0) {
      // Small: the whole blob is the tail, in memory.
      Digest actual = known != nullptr && known->algorithm() == expected.algorithm() ? *known
                                                                                     : digestOf(u->tail, expected.algorithm());
      if (!(actual == expected)) return mismatch(actual);
      auto exists = locate(expected);
      if (!exists.isOk()) {
        if (exists.status().code() != Code::kBlobUnknown) return exists.status();
        S3Client::Call c;
        c.method = "PUT";
        c.key = blobKey(expected);
        c.body = u->tail;
        auto r = s3_.call(c);
        if (!r.isOk()) return r.status();
      }
      cleanUp(id, *u);
      return size;
    }
    const bool whole_only = u->state.wholeOnly() && u->sending.empty() && u->tail.empty();
    // A commit cut short after the parts were assembled (its state marks the digest they
    // are being stored under) has nothing left to assemble.
    if (!u->state.committing.empty()) u->completed = true;
    if (!u->completed && !whole_only) {
      u->part_stream.reset();  // a part under way stops here: the tail holds its bytes
      // The last part may be small.
      Status st = u->tail.empty() ? Status::ok() : sendPart(id, *u, std::exchange(u->tail, std::string()));
      if (st.isOk()) st = waitForParts(*u);
      if (st.isOk()) st = complete(id, *u);
      // The store knows no such multipart upload: a commit cut short after assembling it
      // (before its state said so) left the assembled object, its digest checked below.
      if (st.code() == Code::kNotFound && assembledAlready(dataKey(id, u->state), size)) st = Status::ok();
      if (!st.isOk()) {
        forget(id);
        return st;
      }
      u->completed = true;
    }
    const std::string assembled = whole_only ? wholeKey(id, u->state) : dataKey(id, u->state);
    Digest actual;
    if (known != nullptr && known->algorithm() == expected.algorithm()) {
      actual = *known;
    } else {
      Hasher h(expected.algorithm());
      WHARF_RETURN_IF_ERROR(s3_.readStream(assembled, [&](std::string_view piece) {
        h.update(piece);
        return Status::ok();
      }));
      if (h.bytes() != size) {
        return Status(Code::kIoError, "the assembled upload holds " + std::to_string(h.bytes()) + " bytes, not " +
                                          std::to_string(size));
      }
      actual = h.digest();
    }
    if (!(actual == expected)) return mismatch(actual);
    auto exists = locate(expected);
    // There already, maybe by this very upload (a commit whose answer was lost, tried
    // again): then its bytes stay.
    bool by_reference = exists.isOk() && exists->key == contentsKey(id);
    if (!exists.isOk()) {
      if (exists.status().code() != Code::kBlobUnknown) return exists.status();
      if (assembled == contentsKey(id)) {
        WHARF_RETURN_IF_ERROR(storeByReference(id, *u, expected, size));
        by_reference = true;
      } else {
        WHARF_RETURN_IF_ERROR(copy(assembled, blobKey(expected), size));
      }
    }
    cleanUp(id, *u, by_reference);
    return size;
  }

  Status removeUpload(const std::string& id) override {
    forget(id);
    // The streamed bytes go too, unless a commit cut short already stored them by
    // reference (the state says under which digest; the blob there names them).
    // Without a state (a committed upload's is gone; this removal deletes the bytes before
    // the state) or with one that does not read, the bytes stay: they may be a blob's.
    auto stored = loadState(id);
    if (!stored.isOk() && stored.status().code() != Code::kBlobUploadUnknown &&
        stored.status().code() != Code::kCorruption) {
      return stored.status();
    }
    bool keep = !stored.isOk();
    if (stored.isOk() && !stored->committing.empty()) {
      auto d = Digest::parse(stored->committing);
      if (d.isOk()) {
        auto at = locate(*d);
        if (!at.isOk() && at.status().code() != Code::kBlobUnknown && at.status().code() != Code::kCorruption) {
          return at.status();  // the store away: nothing deleted
        }
        keep = at.isOk() && at->key == contentsKey(id);
      }
    }
    if (!keep) WHARF_RETURN_IF_ERROR(deleteKey(contentsKey(id)));
    // Multipart uploads of this upload: the one the state names, and any a crash left
    // before the state named it. (Aborting one completed already leaves its object.)
    for (const std::string& prefix : {uploadKey(id, ""), contentsKey(id)}) {
      auto multipart = listMultipart(prefix);
      if (!multipart.isOk()) return multipart.status();
      for (const auto& m : *multipart) {
        S3Client::Call abort;
        abort.method = "DELETE";
        abort.key = m.key;
        abort.query["uploadId"] = m.upload_id;
        auto r = s3_.send(abort);
        if (!r.isOk()) return r.status();
      }
    }
    std::vector<std::string> objects;
    WHARF_RETURN_IF_ERROR(s3_.list("uploads/" + id + "/", [&](const S3Client::Listed& l) {
      objects.push_back(l.key);
      return true;
    }));
    // The state goes last: while it is there, the upload is listed and purged again.
    std::string state = uploadKey(id, "state");
    for (const auto& key : objects) {
      if (key != state) WHARF_RETURN_IF_ERROR(deleteKey(key));
    }
    return deleteKey(state);
  }

  std::vector<std::pair<std::string, int64_t>> listUploads() override {
    std::unordered_map<std::string, int64_t> latest;
    Status st = s3_.list("uploads/", [&](const S3Client::Listed& l) {
      auto parts = splitKey(l.key);
      if (parts.size() >= 3 && isUuid(parts[1])) latest[parts[1]] = std::max(latest[parts[1]], l.mtime_ms);
      return true;
    });
    if (!st.isOk()) logWarn("cannot list S3 uploads", {{"store", describe()}, {"error", st.message()}});
    // Multipart uploads whose objects are gone (a crash between the first part and the
    // first flush) are uploads too, so that the purge aborts them.
    for (const char* prefix : {"uploads/", "contents/"}) {
      auto multipart = listMultipart(prefix);
      if (!multipart.isOk()) {
        logWarn("cannot list S3 multipart uploads", {{"store", describe()}, {"error", multipart.status().message()}});
        continue;
      }
      for (const auto& m : *multipart) {
        auto parts = splitKey(m.key);  // uploads/<id>/data or contents/<id>
        if (parts.size() < 2 || !isUuid(parts[1])) continue;
        latest[parts[1]] = std::max(latest[parts[1]], m.initiated_ms);
      }
    }
    return {latest.begin(), latest.end()};
  }

  Status init() {
    S3Client::Call hb;
    hb.method = "HEAD";
    hb.bucket_only = true;
    auto bucket = s3_.send(hb);
    if (!bucket.isOk()) return bucket.status();
    if (bucket->status == 404) {
      S3Client::Call mk;
      mk.method = "PUT";
      mk.bucket_only = true;
      auto r = s3_.call(mk);
      if (!r.isOk()) return Status(r.status().code(), "create bucket: " + r.status().message());
      logInfo("created the S3 bucket", {{"store", describe()}});
    } else if (bucket->status / 100 != 2) {
      return S3Client::errorOf(*bucket, "bucket " + s3_.location().bucket);
    }
    S3Client::Call get;
    get.key = "layout";
    auto layout = s3_.send(get);
    if (!layout.isOk()) return layout.status();
    if (layout->status == 404) {
      WHARF_RETURN_IF_ERROR(putLayout(s3_));
      references_ = true;
      return probes();
    }
    if (layout->status / 100 != 2) return S3Client::errorOf(*layout, "GET layout");
    std::string tag = layoutTag(layout->body);
    if (tag == kBlobStoreLayoutTag) {
      // The layout before blobs by reference: used as it is (blobs copied under their
      // digest) until it is upgraded, once no core of an older version uses the store
      // (one would read a reference as an empty blob).
      logInfo("the S3 blob store has layout 1: large blobs are copied under their digest; once every core runs "
              "this version, wharfctl blobstore upgrade stores them by reference (cores started after it)",
              {{"store", describe()}});
    } else if (tag == kS3LayoutTag) {
      references_ = true;
    } else {
      return Status(Code::kCorruption, "blob store " + describe() + " has layout \"" + tag + "\", expected \"" +
                                           kS3LayoutTag + "\"");
    }
    return probes();
  }

 private:
  Status probes() {
    WHARF_RETURN_IF_ERROR(probeStreaming());
    return references_ ? probeMetadata() : Status::ok();
  }

  // A reference is an object's metadata: a store that drops x-amz-meta-* headers (some
  // gateways do) gets every blob copied instead.
  Status probeMetadata() {
    const std::string key = "metadata-probe";
    S3Client::Call put;
    put.method = "PUT";
    put.key = key;
    put.headers.emplace_back(kContentsHeader, "contents/probe");
    auto r = s3_.call(put);
    if (!r.isOk()) return r.status();
    S3Client::Call head;
    head.method = "HEAD";
    head.key = key;
    auto h = s3_.send(head);
    if (!h.isOk()) return h.status();
    if (h->header(kContentsHeader) != "contents/probe") {
      references_ = false;
      logWarn("the S3 store does not keep object metadata: blobs are copied under their digest, not stored by "
              "reference",
              {{"store", describe()}});
    }
    return deleteKey(key);
  }

  // Not every S3-compatible store takes streamed (aws-chunked) PUTs: one small streamed
  // PUT at start tells. A store that refuses it gets announced uploads in parts.
  Status probeStreaming() {
    const std::string key = "streaming-probe";
    const std::string bytes = "wharf: does this store take aws-chunked PUTs?\n";
    auto put = s3_.startPut(key, bytes.size());
    if (!put.isOk()) return put.status();  // the store is away: the start fails as it would anyway
    Status st = (*put)->write(bytes);
    int answered = 0;
    Result<std::string> etag = st.isOk() ? (*put)->finish(&answered) : Result<std::string>(st);
    // No answer, or a store too busy to say: the start fails, as it would on any call.
    if (!etag.isOk() && (answered == 0 || answered == 503)) return etag.status();
    streaming_ = etag.isOk();
    if (streaming_) {
      (void)deleteKey(key);
    } else {
      logInfo("the S3 store does not take streamed (aws-chunked) PUTs; every upload goes in parts",
              {{"store", describe()}, {"answer", etag.status().message()}});
    }
    return Status::ok();
  }

  static std::vector<std::string> splitKey(const std::string& key) {
    std::vector<std::string> out;
    size_t start = 0;
    while (true) {
      size_t slash = key.find('/', start);
      out.push_back(key.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) return out;
      start = slash + 1;
    }
  }

  static Status mismatch(const Digest& actual) {
    return Status(Code::kDigestInvalid, "provided digest did not match uploaded content (content is " + actual.str() + ")");
  }


  Status deleteKey(const std::string& key) {
    S3Client::Call c;
    c.method = "DELETE";
    c.key = key;
    auto r = s3_.send(c);
    if (!r.isOk()) return r.status();
    if (r->status / 100 != 2 && r->status != 404) return S3Client::errorOf(*r, "DELETE " + key);
    return Status::ok();
  }

  // The multipart uploads in progress whose keys start with prefix (relative to the
  // store's prefix, as the keys returned).
  struct Multipart {
    std::string key;
    std::string upload_id;
    int64_t initiated_ms = 0;
  };
  Result<std::vector<Multipart>> listMultipart(const std::string& prefix) {
    std::vector<Multipart> out;
    S3Client::Call lc;
    lc.bucket_only = true;
    lc.query["uploads"] = "";
    lc.query["prefix"] = s3_.location().prefix + prefix;
    auto r = s3_.call(lc);
    if (!r.isOk()) return r.status();
    auto keys = xmlValues(r->body, "Key");
    auto ids = xmlValues(r->body, "UploadId");
    auto times = xmlValues(r->body, "Initiated");
    for (size_t i = 0; i < keys.size() && i < ids.size(); ++i) {
      if (keys[i].rfind(s3_.location().prefix, 0) != 0) continue;
      out.push_back(Multipart{keys[i].substr(s3_.location().prefix.size()), ids[i],
                              i < times.size() ? parseIsoTimeMs(times[i]) : 0});
    }
    return out;
  }

  // Stores the state object; returns its ETag.
  Result<std::string> putState(const std::string& id, const UploadState& state) {
    S3Client::Call c;
    c.method = "PUT";
    c.key = uploadKey(id, "state");
    std::string body = state.toJson();
    c.body = body;
    auto r = s3_.call(c);
    if (!r.isOk()) return r.status();
    return r->header("etag");
  }

  Result<UploadState> loadState(const std::string& id) {
    S3Client::Call c;
    c.key = uploadKey(id, "state");
    auto r = s3_.send(c);
    if (!r.isOk()) return r.status();
    if (r->status == 404) return Status(Code::kBlobUploadUnknown, "blob upload unknown to registry");
    if (r->status / 100 != 2) return S3Client::errorOf(*r, "GET upload state");
    return UploadState::fromJson(r->body);
  }

  std::shared_ptr<OpenUpload> find(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = open_.find(id);
    return it == open_.end() ? nullptr : it->second;
  }
  void remember(const std::string& id, std::shared_ptr<OpenUpload> u) {
    std::lock_guard lock(mu_);
    // Uploads left open drop out first (their stored state is complete: only flushed
    // uploads sit here between requests).
    if (open_.size() >= kMaxOpenUploads) {
      for (auto it = open_.begin(); it != open_.end();) it = it->second->dirty ? std::next(it) : open_.erase(it);
    }
    open_[id] = std::move(u);
  }
  void forget(const std::string& id) {
    std::shared_ptr<OpenUpload> dropped;  // waits for its parts on their way, unlocked
    std::lock_guard lock(mu_);
    if (auto it = open_.find(id); it != open_.end()) {
      dropped = std::move(it->second);
      open_.erase(it);
    }
  }

  // The upload as this replica holds it, else as stored.
  Result<std::shared_ptr<OpenUpload>> openUpload(const std::string& id) {
    if (auto u = find(id)) return u;
    auto state = loadState(id);
    if (!state.isOk()) return state.status();
    auto u = std::make_shared<OpenUpload>();
    u->state = *state;
    u->stored_tail = state->tail_key;
    uint64_t tail_size = state->size - state->storedSize();
    if (tail_size > 0) {
      if (state->tail_key.empty()) return Status(Code::kCorruption, "upload " + id + " lost its tail");
      S3Client::Call c;
      c.key = uploadKey(id, state->tail_key);
      auto r = s3_.call(c);
      if (!r.isOk()) return r.status();
      if (r->body.size() != tail_size) return Status(Code::kCorruption, "upload " + id + " tail has the wrong size");
      u->tail = std::move(r->body);
    }
    remember(id, u);
    return u;
  }

  // Sends bytes as the upload's next part: on a sender thread (waiting first for the
  // oldest part on its way if kPartsInFlight are), or here when the store has
  // kMaxSendingParts on their way already.
  Status sendPart(const std::string& id, OpenUpload& u, std::string bytes) {
    if (u.state.parts.size() + u.sending.size() >= kMaxParts) {
      return Status(Code::kTooLarge, "the upload exceeds " + std::to_string(kMaxParts) + " parts");
    }
    const bool first = u.state.multipart.empty() && !u.starting.valid();
    // Assembled where the blob's bytes will stay (stored by reference), unless
    // contents/<id> holds streamed first bytes already.
    if (first) u.state.parts_in_contents = references_ && u.state.whole == 0;
    const std::string key = dataKey(id, u.state);
    if (u.state.whole > 0 && !u.state.whole_in_parts && u.state.parts.empty() && u.sending.empty()) {
      // More bytes after a streamed whole: the whole object becomes part 1, copied by
      // the store.
      if (first) {
        auto started = startMultipart(key);
        if (!started.isOk()) return started.status();
        u.state.multipart = *started;
      }
      S3Client::Call c;
      c.method = "PUT";
      c.key = key;
      c.query["partNumber"] = "1";
      c.query["uploadId"] = u.state.multipart;
      c.headers.emplace_back("x-amz-copy-source", s3_.copySource(wholeKey(id, u.state)));
      auto r = s3_.call(c);
      if (!r.isOk()) return r.status();
      auto etags = xmlValues(r->body, "ETag");
      if (r->body.find("<Error>") != std::string::npos || etags.empty()) {
        return S3Client::errorOf(*r, "copy the streamed bytes of upload " + id + " as its first part");
      }
      u.state.parts.push_back(Part{1, etags[0], u.state.whole});
      u.state.whole_in_parts = true;
    }
    if (u.sending.size() >= kPartsInFlight) WHARF_RETURN_IF_ERROR(waitForParts(u, kPartsInFlight - 1));
    const int number = static_cast<int>(u.state.parts.size() + u.sending.size()) + 1;
    const uint64_t size = bytes.size();
    if (sending_parts_.fetch_add(1) >= kMaxSendingParts) {
      sending_parts_.fetch_sub(1);
      WHARF_RETURN_IF_ERROR(waitForParts(u));
      if (u.state.multipart.empty()) {
        auto started = startMultipart(key);
        if (!started.isOk()) return started.status();
        u.state.multipart = *started;
      }
      auto etag = putPart(key, u.state.multipart, number, bytes);
      giveBuffer(std::move(bytes));
      if (!etag.isOk()) return etag.status();
      u.state.parts.push_back(Part{number, std::move(etag).value(), size});
      return Status::ok();
    }
    // The first part's sender starts the multipart upload (the request goes on receiving
    // meanwhile); the next parts' senders wait for its id.
    std::shared_ptr<std::promise<Result<std::string>>> starter;
    std::shared_future<Result<std::string>> multipart = u.starting;
    if (!u.state.multipart.empty()) {
      std::promise<Result<std::string>> known;
      known.set_value(u.state.multipart);
      multipart = known.get_future().share();
    } else if (!multipart.valid()) {
      starter = std::make_shared<std::promise<Result<std::string>>>();
      multipart = u.starting = starter->get_future().share();
    }
    auto done = std::make_shared<std::promise<Result<std::string>>>();
    u.sending.push_back(SendingPart{number, size, done->get_future()});
    senders_.submit([this, done, starter, multipart, key, number, bytes = std::move(bytes)]() mutable {
      // Whatever happens, the start and the part get an answer (the request waits for it).
      Result<std::string> etag = Status(Code::kInternal, "sending part " + std::to_string(number) + " failed");
      try {
        if (starter) starter->set_value(startMultipart(key));
        starter.reset();
        const auto& upload = multipart.get();
        etag = upload.isOk() ? putPart(key, *upload, number, bytes) : Result<std::string>(upload.status());
      } catch (const std::exception& e) {
        etag = Status(Code::kInternal, "sending part " + std::to_string(number) + ": " + e.what());
      }
      if (starter) starter->set_value(etag.status());
      giveBuffer(std::move(bytes));
      sending_parts_.fetch_sub(1);
      done->set_value(std::move(etag));
    });
    return Status::ok();
  }

  // Streams the part the tail begins (its bytes so far, then each as it arrives), once the
  // upload is known to go in parts (its first part went the usual way) and the store
  // gave the multipart upload's id: the part is at the store when its last byte arrived,
  // where a part sent once full kept the request waiting for it at its end. A body that
  // ends before the part is full drops the stream (the store keeps nothing of it).
  void streamPart(const std::string& id, OpenUpload& u) {
    if (u.part_stream || !streaming_ || (u.state.parts.empty() && u.sending.empty())) return;
    if (u.state.multipart.empty()) {
      if (!u.starting.valid() || u.starting.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
      auto started = u.starting.get();
      if (!started.isOk()) return;  // the parts waiting for it fail the request
      u.state.multipart = std::move(started).value();
      u.starting = {};
    }
    const size_t number = u.state.parts.size() + u.sending.size() + 1;
    if (number > kMaxParts) return;
    auto put = s3_.startPut(dataKey(id, u.state), s3_.location().part_size,
                            {{"partNumber", std::to_string(number)}, {"uploadId", u.state.multipart}});
    if (!put.isOk() || (!u.tail.empty() && !(*put)->write(u.tail).isOk())) return;  // sent once full instead
    u.part_stream = std::move(put).value();
  }

  // The streamed part is full: its ETag joins the parts on their way (in order).
  Status finishStreamedPart(const std::string& id, OpenUpload& u) {
    auto put = std::move(u.part_stream);
    const int number = static_cast<int>(u.state.parts.size() + u.sending.size()) + 1;
    auto etag = put->finish();
    if (!etag.isOk()) return sendPart(id, u, std::exchange(u.tail, std::string()));  // sent again, the usual way
    std::promise<Result<std::string>> done;
    done.set_value(std::move(etag));
    u.sending.push_back(SendingPart{number, u.tail.size(), done.get_future()});
    giveBuffer(std::exchange(u.tail, std::string()));
    return Status::ok();
  }

  // Whether the object parts are assembled into holds size bytes.
  bool assembledAlready(const std::string& key, uint64_t size) {
    S3Client::Call c;
    c.method = "HEAD";
    c.key = key;
    auto r = s3_.send(c);
    return r.isOk() && r->status == 200 && r->header("content-length") == std::to_string(size);
  }

  // S3's id of a new multipart upload of key.
  Result<std::string> startMultipart(const std::string& key) {
    S3Client::Call c;
    c.method = "POST";
    c.key = key;
    c.query["uploads"] = "";
    auto r = s3_.call(c);
    if (!r.isOk()) return r.status();
    auto ids = xmlValues(r->body, "UploadId");
    if (ids.empty() || ids[0].empty()) return Status(Code::kIoError, "S3 store started a multipart upload without an id");
    return ids[0];
  }

  // Buffers for tails that grow to a part: one given back by a sender when there is one
  // (its pages are the process's already, where a fresh 16 MiB buffer costs as many page
  // faults each time).
  std::string takeBuffer() {
    std::string buffer;
    {
      std::lock_guard lock(mu_);
      if (!spare_.empty()) {
        buffer = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    if (buffer.capacity() < s3_.location().part_size) buffer.reserve(s3_.location().part_size);
    return buffer;
  }
  void giveBuffer(std::string buffer) {
    if (buffer.capacity() < s3_.location().part_size) return;
    buffer.clear();
    std::lock_guard lock(mu_);
    if (spare_.size() < kSpareBuffers) spare_.push_back(std::move(buffer));
  }

  Result<std::string> putPart(const std::string& key, const std::string& multipart, int number, std::string_view bytes) {
    S3Client::Call c;
    c.method = "PUT";
    c.key = key;
    c.query["partNumber"] = std::to_string(number);
    c.query["uploadId"] = multipart;
    c.body = bytes;
    auto r = s3_.call(c);
    if (!r.isOk()) return r.status();
    std::string etag = r->header("etag");
    if (etag.empty()) return Status(Code::kIoError, "S3 store took a part without an ETag");
    return etag;
  }

  // Waits until at most keep parts of the upload are on their way, the others recorded in
  // its state (in order). The first failure is returned once every part waited for is
  // back (the caller then drops what this replica holds of the upload).
  static Status waitForParts(OpenUpload& u, size_t keep = 0) {
    Status first;
    while (u.sending.size() > keep) {
      SendingPart p = std::move(u.sending.front());
      u.sending.pop_front();
      auto etag = p.etag.get();
      if (!etag.isOk()) {
        if (first.isOk()) first = etag.status();
        continue;
      }
      if (first.isOk()) u.state.parts.push_back(Part{p.number, std::move(etag).value(), p.size});
    }
    // Every part back: the multipart upload's start is, and its id goes in the state.
    if (u.sending.empty() && u.starting.valid()) {
      auto started = u.starting.get();
      u.starting = {};
      if (started.isOk()) u.state.multipart = started.value();
      else if (first.isOk()) first = started.status();
    }
    return first;
  }

  Status flush(const std::string& id, OpenUpload& u) {
    if (u.streaming) return Status(Code::kBlobUploadInvalid, "the upload's announced bytes did not all arrive");
    u.part_stream.reset();  // a part under way stops here: the tail holds its bytes
    if (u.tail.size() >= kMinPart) WHARF_RETURN_IF_ERROR(sendPart(id, u, std::exchange(u.tail, std::string())));
    WHARF_RETURN_IF_ERROR(waitForParts(u));
    // The tail object is named by the range it holds, so a new one never overwrites
    // what the stored state names.
    std::string tail_key;
    if (!u.tail.empty()) {
      tail_key = "tail." + std::to_string(u.state.size - u.tail.size()) + "-" + std::to_string(u.state.size);
      S3Client::Call c;
      c.method = "PUT";
      c.key = uploadKey(id, tail_key);
      c.body = u.tail;
      auto r = s3_.call(c);
      if (!r.isOk()) return r.status();
    }
    u.state.tail_key = tail_key;
    auto etag = putState(id, u.state);
    if (!etag.isOk()) return etag.status();
    u.stored_etag = std::move(etag).value();
    if (!u.stored_tail.empty() && u.stored_tail != tail_key) (void)deleteKey(uploadKey(id, u.stored_tail));
    u.stored_tail = tail_key;
    u.dirty = false;
    return Status::ok();
  }

  Status complete(const std::string& id, const OpenUpload& u) {
    std::string body = "<CompleteMultipartUpload>";
    for (const auto& p : u.state.parts) {
      body += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>" + p.etag + "</ETag></Part>";
    }
    body += "</CompleteMultipartUpload>";
    S3Client::Call c;
    c.method = "POST";
    c.key = dataKey(id, u.state);
    c.query["uploadId"] = u.state.multipart;
    c.body = body;
    auto r = s3_.call(c);
    if (!r.isOk()) return r.status();
    // S3 may answer 200 and report the failure in the body.
    if (r->body.find("<Error>") != std::string::npos) return S3Client::errorOf(*r, "complete upload " + id);
    return Status::ok();
  }

  Status copy(const std::string& from, const std::string& to, uint64_t size) {
    if (size <= kMaxCopy) {
      S3Client::Call c;
      c.method = "PUT";
      c.key = to;
      c.headers.emplace_back("x-amz-copy-source", s3_.copySource(from));
      auto r = s3_.call(c);
      if (!r.isOk()) return r.status();
      if (r->body.find("<Error>") != std::string::npos) return S3Client::errorOf(*r, "copy to " + to);
      return Status::ok();
    }
    auto started = startMultipart(to);
    if (!started.isOk()) return started.status();
    const std::string upload = std::move(started).value();
    std::string body = "<CompleteMultipartUpload>";
    int n = 0;
    Status st;
    for (uint64_t off = 0; off < size && st.isOk(); off += kCopyPart) {
      uint64_t end = std::min(size, off + kCopyPart) - 1;
      S3Client::Call part;
      part.method = "PUT";
      part.key = to;
      part.query["partNumber"] = std::to_string(++n);
      part.query["uploadId"] = upload;
      part.headers.emplace_back("x-amz-copy-source", s3_.copySource(from));
      part.headers.emplace_back("x-amz-copy-source-range", "bytes=" + std::to_string(off) + "-" + std::to_string(end));
      auto pr = s3_.call(part);
      if (!pr.isOk()) {
        st = pr.status();
        break;
      }
      auto etags = xmlValues(pr->body, "ETag");
      if (etags.empty()) {
        st = Status(Code::kIoError, "S3 store copied a part without an ETag");
        break;
      }
      body += "<Part><PartNumber>" + std::to_string(n) + "</PartNumber><ETag>" + etags[0] + "</ETag></Part>";
    }
    if (st.isOk()) {
      body += "</CompleteMultipartUpload>";
      S3Client::Call done;
      done.method = "POST";
      done.key = to;
      done.query["uploadId"] = upload;
      done.body = body;
      auto dr = s3_.call(done);
      if (!dr.isOk()) st = dr.status();
      else if (dr->body.find("<Error>") != std::string::npos) st = S3Client::errorOf(*dr, "complete copy to " + to);
    }
    if (!st.isOk()) {
      S3Client::Call abort;
      abort.method = "DELETE";
      abort.key = to;
      abort.query["uploadId"] = upload;
      (void)s3_.send(abort);
    }
    return st;
  }

  // After a commit: the upload's objects go (but contents/<id> stored by reference), the
  // state last (what a failure leaves is listed and purged later).
  void cleanUp(const std::string& id, const OpenUpload& u, bool by_reference = false) {
    forget(id);
    const std::string kept = by_reference ? contentsKey(id) : std::string();
    Status st;
    if (u.completed && dataKey(id, u.state) != kept) st = deleteKey(dataKey(id, u.state));
    if (st.isOk() && u.state.whole > 0 && wholeKey(id, u.state) != kept) st = deleteKey(wholeKey(id, u.state));
    if (st.isOk() && !u.stored_tail.empty()) st = deleteKey(uploadKey(id, u.stored_tail));
    if (st.isOk()) st = deleteKey(uploadKey(id, "state"));
    if (!st.isOk()) logWarn("cannot remove a committed upload's objects", {{"upload", id}, {"error", st.message()}});
  }

  // Where a blob's bytes are: its own object, or the one it names (stored by reference).
  struct Located {
    std::string key;
    uint64_t size = 0;
  };
  // Asked of the store (a reference is then remembered). kBlobUnknown when there is no
  // such blob.
  Result<Located> locate(const Digest& digest) {
    const std::string name = blobKey(digest);
    S3Client::Call c;
    c.method = "HEAD";
    c.key = name;
    auto r = s3_.send(c);
    if (!r.isOk()) return r.status();
    if (r->status == 404) return Status(Code::kBlobUnknown, "blob unknown to registry");
    if (r->status / 100 != 2) return S3Client::errorOf(*r, "HEAD " + name);
    auto number = [](const std::string& v) -> std::optional<uint64_t> {
      if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
      return std::stoull(v);
    };
    Located at{name, 0};
    if (std::string contents = r->header(kContentsHeader); !contents.empty()) {
      auto n = number(r->header(kSizeHeader));
      if (contents.rfind("contents/", 0) != 0 || !n) return Status(Code::kCorruption, name + " names its bytes wrongly");
      at = Located{contents, *n};
    } else {
      auto n = number(r->header("content-length"));
      if (!n) return Status(Code::kIoError, "HEAD " + name + ": no Content-Length");
      // Empty but for the empty blob: a reference whose metadata the store lost.
      if (*n == 0 && !(digest == digestOf(std::string_view(), digest.algorithm()))) {
        return Status(Code::kCorruption, name + " is empty: the store did not keep the metadata naming its bytes");
      }
      at.size = *n;
    }
    std::lock_guard lock(mu_);
    if (at.key == name) {
      located_.erase(name);  // only references are remembered: a name's own bytes are read by name
    } else {
      if (located_.size() >= kMaxLocated) located_.clear();
      located_[name] = at;
    }
    return at;
  }
  // The reference this replica remembers for the blob, if any.
  std::optional<Located> located(const Digest& digest) {
    std::lock_guard lock(mu_);
    auto it = located_.find(blobKey(digest));
    if (it == located_.end()) return std::nullopt;
    return it->second;
  }
  void unlocate(const Digest& digest) {
    std::lock_guard lock(mu_);
    located_.erase(blobKey(digest));
  }

  // Makes the checked bytes of contents/<id> the blob: the state first records under
  // which digest (a purge of the upload then leaves them), then the blob's name is
  // written, naming them.
  Status storeByReference(const std::string& id, OpenUpload& u, const Digest& digest, uint64_t size) {
    UploadState marked = u.state;
    marked.committing = digest.str();
    auto etag = putState(id, marked);
    if (!etag.isOk()) return etag.status();
    u.stored_etag = std::move(etag).value();
    S3Client::Call c;
    c.method = "PUT";
    c.key = blobKey(digest);
    c.headers.emplace_back(kContentsHeader, contentsKey(id));
    c.headers.emplace_back(kSizeHeader, std::to_string(size));
    auto r = s3_.call(c);
    if (!r.isOk()) return r.status();
    std::lock_guard lock(mu_);
    located_[blobKey(digest)] = Located{contentsKey(id), size};
    return Status::ok();
  }

  S3Client s3_;
  bool streaming_ = false;   // the store takes streamed PUTs (probed at start)
  bool references_ = false;  // layout 2: streamed blobs are stored by reference
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<OpenUpload>> open_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, Located> located_;  // GUARDED_BY(mu_); references, by blob key
  std::vector<std::string> spare_;  // GUARDED_BY(mu_); empty part buffers, at most kSpareBuffers
  std::atomic<size_t> sending_parts_{0};
  WorkQueue senders_{kMaxSendingParts};  // last: its threads are joined before the rest goes
};

}  // namespace

Result<bool> upgradeS3BlobStoreLayout(const S3Location& location) {
  S3Client s3(location);
  S3Client::Call get;
  get.key = "layout";
  auto layout = s3.call(get);
  if (!layout.isOk()) return layout.status();
  std::string tag = layoutTag(layout->body);
  if (tag == kS3LayoutTag) return false;
  if (tag != kBlobStoreLayoutTag) {
    return Status(Code::kCorruption, "blob store " + location.display + " has layout \"" + tag + "\"");
  }
  WHARF_RETURN_IF_ERROR(putLayout(s3));
  return true;
}

Result<std::unique_ptr<BlobStore>> openS3BlobStore(const S3Location& location) {
  auto store = std::make_unique<S3BlobStore>(location);
  WHARF_RETURN_IF_ERROR(store->init());
  return std::unique_ptr<BlobStore>(std::move(store));
}

}  // namespace wharf
