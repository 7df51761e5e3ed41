// A compact, read-only YAML document for topology files (libyaml's event parser underneath).
//
// Why not yaml-cpp here: a 100,000-node topology (8.5 MB) takes yaml-cpp 2.8 s and 590 MB to load
// (its scanner alone is 1.9 s on a CI core); libyaml's parser reads it in 0.4 s, and this tree
// keeps a node in ~48 bytes plus its text. The config block of a topology is still handed to the
// config layer as a yaml-cpp node (small, and config.cpp reads every config file that way).
//
// Contract
//   * load() parses the first document of `text`; a syntax error (or a second document) is a
//     yaml_error with libyaml's problem and its 0-based line/column.
//   * node mirrors the part of YAML::Node's const interface the topology reader uses: IsDefined,
//     IsNull, IsScalar, IsSequence, IsMap, Scalar, size, operator[] (a key of a map, an index of a
//     sequence; anything else is an undefined node), iteration (a sequence's items; a map's
//     entries with ->first / ->second), Mark.
//   * Null is what YAML 1.2's core schema says: an empty plain scalar, ~, null, Null, NULL.
//   * An alias is the anchored node itself (shared, never copied), so an alias bomb costs what its
//     text costs; walking it is bounded by the topology's limits (sizes are checked first).
//   * Nodes keep their document alive (shared ownership): a node may outlive the load call.
// Thread-safety: a loaded document is immutable; nodes may be read from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringflow::ops::yaml {

struct mark {
  int line = -1;  // 0-based (as YAML::Mark); -1 = unknown
  int column = -1;
  std::size_t index = 0;  // libyaml's: in characters, not bytes (byte_offset() converts)
};

/// The byte offset in `text` of `m` (its line, then its column in UTF-8 characters).
[[nodiscard]] std::size_t byte_offset(std::string_view text, const mark& m) noexcept;

struct yaml_error : std::runtime_error {
  yaml_error(const std::string& what, mark at) : std::runtime_error(what), where(at) {}
  mark where;
};

enum class kind : std::uint8_t { null, scalar, sequence, map };

struct doc_node {
  kind k = kind::null;
  mark start, end;  // end: just past the node (its text is [start.index, end.index))
  std::string text;
  std::vector<const doc_node*> items;  // a sequence's items; a map's key, value, key, value, ...
};

struct document {
  std::deque<doc_node> nodes;  // stable addresses
  const doc_node* root = nullptr;
};

class node;

/// One entry of an iteration: a sequence item (the entry is the node) or a map pair (first, second).
struct entry;

class node {
 public:
  node() = default;
  node(std::shared_ptr<const document> d, const doc_node* n) : doc_(std::move(d)), n_(n) {}

  [[nodiscard]] bool IsDefined() const noexcept { return n_ != nullptr; }
  explicit operator bool() const noexcept { return IsDefined(); }
  [[nodiscard]] bool IsNull() const noexcept { return n_ && n_->k == kind::null; }
  [[nodiscard]] bool IsScalar() const noexcept { return n_ && n_->k == kind::scalar; }
  [[nodiscard]] bool IsSequence() const noexcept { return n_ && n_->k == kind::sequence; }
  [[nodiscard]] bool IsMap() const noexcept { return n_ && n_->k == kind::map; }
  [[nodiscard]] const std::string& Scalar() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] node operator[](std::string_view key) const;
  [[nodiscard]] node operator[](const char* key) const { return (*this)[std::string_view(key)]; }
  [[nodiscard]] node operator[](const std::string& key) const { return (*this)[std::string_view(key)]; }
  [[nodiscard]] node operator[](std::size_t i) const;
  [[nodiscard]] node operator[](int i) const { return (*this)[static_cast<std::size_t>(i)]; }
  [[nodiscard]] mark Mark() const noexcept { return n_ ? n_->start : yaml::mark{}; }
  [[nodiscard]] const doc_node* raw() const noexcept { return n_; }

  class iterator;
  [[nodiscard]] iterator begin() const;
  [[nodiscard]] iterator end() const;

 private:
  std::shared_ptr<const document> doc_;
  const doc_node* n_ = nullptr;
};

struct entry : node {
  node first, second;
};

class node::iterator {
 public:
  iterator(std::shared_ptr<const document> d, const doc_node* n, std::size_t i) : doc_(std::move(d)), n_(n), i_(i) {}
  const entry& operator*() {
    fill();
    return cur_;
  }
  const entry* operator->() {
    fill();
    return &cur_;
  }
  iterator& operator++() {
    i_ += n_ && n_->k == kind::map ? 2 : 1;
    return *this;
  }
  bool operator==(const iterator& o) const noexcept { return n_ == o.n_ && i_ == o.i_; }
  bool operator!=(const iterator& o) const noexcept { return !(*this == o); }

 private:
  void fill() {
    if (n_->k == kind::map) {
      cur_.first = node(doc_, n_->items[i_]);
      cur_.second = node(doc_, n_->items[i_ + 1]);
    } else {
      static_cast<node&>(cur_) = node(doc_, n_->items[i_]);
    }
  }
  std::shared_ptr<const document> doc_;
  const doc_node* n_;
  std::size_t i_;
  entry cur_;
};

/// Parses the first document of `text`. Throws yaml_error.
[[nodiscard]] node load(std::string_view text);

}  // namespace ringflow::ops::yaml
