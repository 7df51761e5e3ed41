// The topology reader's YAML document over libyaml: see yaml_doc.hpp.
#include "yaml_doc.hpp"

#include <yaml.h>

#include <unordered_map>

namespace ringflow::ops::yaml {

namespace {

const std::string empty_text;

mark mark_of(const yaml_mark_t& m) {
  return mark{static_cast<int>(m.line), static_cast<int>(m.column), static_cast<std::size_t>(m.index)};
}

bool is_null_plain(std::string_view s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// The libyaml parser, freed on every way out.
struct parser {
  yaml_parser_t p{};
  parser(std::string_view text) {
    if (!yaml_parser_initialize(&p)) throw yaml_error("cannot start the YAML parser (out of memory)", {});
    yaml_parser_set_input_string(&p, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  }
  ~parser() { yaml_parser_delete(&p); }
  parser(const parser&) = delete;
  parser& operator=(const parser&) = delete;

  // The next event (the caller deletes it); a syntax error throws with libyaml's words.
  void next(yaml_event_t& e) {
    if (yaml_parser_parse(&p, &e)) return;
    std::string what = p.problem ? p.problem : "malformed YAML";
    if (p.context) what = std::string(p.context) + ": " + what;
    throw yaml_error(what, mark_of(p.problem_mark));
  }
};

struct event {
  yaml_event_t e{};
  ~event() { yaml_event_delete(&e); }
};

}  // namespace

const std::string& node::Scalar() const noexcept { return n_ && n_->k == kind::scalar ? n_->text : empty_text; }

std::size_t node::size() const noexcept {
  if (!n_) return 0;
  if (n_->k == kind::map) return n_->items.size() / 2;
  if (n_->k == kind::sequence) return n_->items.size();
  return 0;
}

node node::operator[](std::string_view key) const {
  if (!n_ || n_->k != kind::map) return {};
  for (std::size_t i = 0; i + 1 < n_->items.size(); i += 2) {
    const doc_node* k = n_->items[i];
    if (k->k == kind::scalar && k->text == key) return node(doc_, n_->items[i + 1]);
  }
  return {};
}

node node::operator[](std::size_t i) const {
  if (!n_ || n_->k != kind::sequence || i >= n_->items.size()) return {};
  return node(doc_, n_->items[i]);
}

std::size_t byte_offset(std::string_view text, const mark& m) noexcept {
  std::size_t at = 0;
  for (int line = 0; line < m.line && at < text.size(); ++line) {
    const std::size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) return text.size();
    at = nl + 1;
  }
  for (int col = 0; col < m.column && at < text.size(); ++col) {
    ++at;  // one character: its lead byte, then its continuation bytes
    while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
  }
  return at;
}

node::iterator node::begin() const { return iterator(doc_, n_, 0); }
node::iterator node::end() const { return iterator(doc_, n_, n_ && n_->k != kind::scalar ? n_->items.size() : 0); }

node load(std::string_view text) {
  auto doc = std::make_shared<document>();
  parser ps(text);
  std::vector<doc_node*> open;       // the collections being read
  std::vector<std::string> pending;  // their anchors ("" = none): known once the collection ends, so a
                                     // collection cannot hold an alias of itself (no cycles)
  std::unordered_map<std::string, const doc_node*> anchors;
  bool in_document = false, done = false;
  auto add = [&](const doc_node* n) {
    if (open.empty()) doc->root = n;
    else open.back()->items.push_back(n);
  };
  auto anchor = [&](const yaml_char_t* a, const doc_node* n) {
    if (a) anchors[reinterpret_cast<const char*>(a)] = n;
  };
  while (!done) {
    event ev;
    ps.next(ev.e);
    const yaml_event_t& e = ev.e;
    switch (e.type) {
      case YAML_STREAM_START_EVENT: break;
      case YAML_STREAM_END_EVENT: done = true; break;
      case YAML_DOCUMENT_START_EVENT:
        if (in_document || doc->root)
          throw yaml_error("the file holds more than one YAML document ('---'); a topology is one",
                           mark_of(e.start_mark));
        in_document = true;
        break;
      case YAML_DOCUMENT_END_EVENT: in_document = false; break;
      case YAML_ALIAS_EVENT: {
        const auto it = anchors.find(reinterpret_cast<const char*>(e.data.alias.anchor));
        if (it == anchors.end())
          throw yaml_error(std::string("unknown anchor '*") + reinterpret_cast<const char*>(e.data.alias.anchor) + "'",
                           mark_of(e.start_mark));
        add(it->second);
        break;
      }
      case YAML_SCALAR_EVENT: {
        doc_node& n = doc->nodes.emplace_back();
        n.start = mark_of(e.start_mark);
        n.end = mark_of(e.end_mark);
        n.text.assign(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
        const bool plain = e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !e.data.scalar.tag;
        n.k = plain && is_null_plain(n.text) ? kind::null : kind::scalar;
        if (n.k == kind::null) n.text.clear();
        anchor(e.data.scalar.anchor, &n);
        add(&n);
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        doc_node& n = doc->nodes.emplace_back();
        n.k = e.type == YAML_SEQUENCE_START_EVENT ? kind::sequence : kind::map;
        n.start = mark_of(e.start_mark);
        const yaml_char_t* a =
            e.type == YAML_SEQUENCE_START_EVENT ? e.data.sequence_start.anchor : e.data.mapping_start.anchor;
        add(&n);
        open.push_back(&n);
        pending.emplace_back(a ? reinterpret_cast<const char*>(a) : "");
        break;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        open.back()->end = mark_of(e.end_mark);
        if (!pending.back().empty()) anchors[pending.back()] = open.back();
        pending.pop_back();
        open.pop_back();
        break;
      case YAML_NO_EVENT: done = true; break;
    }
  }
  if (!doc->root) return {};  // an empty file
  const doc_node* root = doc->root;
  return node(std::move(doc), root);
}

}  // namespace ringflow::ops::yaml
