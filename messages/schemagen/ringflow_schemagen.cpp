// ringflow_schemagen — emits the device-portable descriptors of a FlatBuffers schema.
//
// Usage: ringflow_schemagen --bfbs <stem>.bfbs --schema <stem>.fbs --out <stem>_ringflow.hpp
//                           [--include-prefix <p>] [--namespace <ns>]
//
// Input is flatc's binary schema (flatc --binary --schema --bfbs-filenames <dir>), read through
// FlatBuffers' reflection API. For every enum, struct and table *declared in* <stem>.fbs it emits,
// in the header named by --out:
//   enum    `enum class E : <underlying>` with the schema's values;
//   struct  a mirror with flatc's exact layout (explicit padding; size, alignment and every field
//           offset static_asserted);
//   table   a descriptor: the type id (the file identifier for the root type, the `ringflow_id`
//           attribute for others, 0 = not a message type), name, field ids, defaults, the inline
//           bytes a writer must reserve, typed RINGFLOW_HD accessors named after the fields, and
//           static writers `add_<field>(fb::builder&, ...)`.
// Generated names never clash with field names: metadata names end in '_' (type_id_, name_,
// num_fields_, inline_max_, fields_, defaults_, table_, begin_), accessors are nullary members and
// writers are static members with arguments (legal overloads of the same name). A field whose C++
// name would equal one of the reserved names, or the table's own name, is refused with a message.
// Descriptors go into namespace <schema namespace>::rf (or --namespace). Exit 0 on success, 1 on a
// schema it refuses or cannot read, 2 on bad usage.
#include <flatbuffers/flatbuffers.h>
#include <flatbuffers/reflection_generated.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using reflection::BaseType;

struct refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const std::set<std::string>& cxx_keywords() {
  static const std::set<std::string> k = {
      "alignas",     "alignof",   "and",        "and_eq",    "asm",      "auto",         "bitand",
      "bitor",       "bool",      "break",      "case",      "catch",    "char",         "char8_t",
      "char16_t",    "char32_t",  "class",      "compl",     "concept",  "const",        "consteval",
      "constexpr",   "constinit", "const_cast", "continue",  "co_await", "co_return",    "co_yield",
      "decltype",    "default",   "delete",     "do",        "double",   "dynamic_cast", "else",
      "enum",        "explicit",  "export",     "extern",    "false",    "float",        "for",
      "friend",      "goto",      "if",         "inline",    "int",      "long",         "mutable",
      "namespace",   "new",       "noexcept",   "not",       "not_eq",   "nullptr",      "operator",
      "or",          "or_eq",     "private",    "protected", "public",   "register",     "reinterpret_cast",
      "requires",    "return",    "short",      "signed",    "sizeof",   "static",       "static_assert",
      "static_cast", "struct",    "switch",     "template",  "this",     "thread_local", "throw",
      "true",        "try",       "typedef",    "typeid",    "typename", "union",        "unsigned",
      "using",       "virtual",   "void",       "volatile",  "wchar_t",  "while",        "xor",
      "xor_eq"};
  return k;
}

// flatc's rule for C++ names: a keyword gets a trailing '_'.
std::string cxx_name(const std::string& n) { return cxx_keywords().count(n) ? n + "_" : n; }

const std::set<std::string>& reserved_members() {
  static const std::set<std::string> r = {"type_id_",  "name_",  "num_fields_", "inline_max_", "fields_",
                                          "defaults_", "table_", "begin_",      "flatc_type_"};
  return r;
}

std::string basename_of(const std::string& p) {
  const auto s = p.find_last_of("/\\");
  return s == std::string::npos ? p : p.substr(s + 1);
}
std::string stem_of(const std::string& p) {
  std::string b = basename_of(p);
  const auto d = b.rfind('.');
  return d == std::string::npos ? b : b.substr(0, d);
}

// "a.b.Name" -> ("a::b", "Name")
std::pair<std::string, std::string> split_name(const std::string& full) {
  const auto d = full.rfind('.');
  if (d == std::string::npos) return {"", full};
  std::string ns = full.substr(0, d);
  std::string out;
  for (char c : ns) {
    if (c == '.') out += "::";
    else out += c;
  }
  return {out, full.substr(d + 1)};
}

struct generator {
  const reflection::Schema* schema = nullptr;
  std::string schema_file;  // basename of the .fbs we generate for
  std::string include_prefix;
  std::string ns_override;
  std::set<std::string> includes;  // other generated headers we need

  bool declared_here(const flatbuffers::String* decl) const {
    if (!decl || decl->size() == 0) return true;  // flatc without declaration files: everything is ours
    return basename_of(decl->str()) == schema_file;
  }
  std::string target_ns(const std::string& full) const {
    if (!ns_override.empty()) return ns_override;
    const auto ns = split_name(full).first;
    return ns.empty() ? "rf" : ns + "::rf";
  }
  // flatc's class of a table: the schema namespace itself, or nothing when the descriptors share it.
  std::string flatc_qualified(const std::string& full) const {
    const auto [ns, raw] = split_name(full);
    if (ns == target_ns(full)) return {};
    return (ns.empty() ? "::" : "::" + ns + "::") + cxx_name(raw);
  }
  std::string qualified(const std::string& full) const {
    return "::" + target_ns(full) + "::" + cxx_name(split_name(full).second);
  }
  void need(const flatbuffers::String* decl) {
    if (declared_here(decl)) return;
    std::string inc = include_prefix.empty() ? "" : include_prefix + "/";
    includes.insert(inc + stem_of(decl->str()) + "_ringflow.hpp");
  }

  static const char* scalar_cxx(BaseType t) {
    switch (t) {
      case BaseType::Bool: return "bool";
      case BaseType::Byte: return "std::int8_t";
      case BaseType::UType:
      case BaseType::UByte: return "std::uint8_t";
      case BaseType::Short: return "std::int16_t";
      case BaseType::UShort: return "std::uint16_t";
      case BaseType::Int: return "std::int32_t";
      case BaseType::UInt: return "std::uint32_t";
      case BaseType::Long: return "std::int64_t";
      case BaseType::ULong: return "std::uint64_t";
      case BaseType::Float: return "float";
      case BaseType::Double: return "double";
      default: return nullptr;
    }
  }
  static std::uint32_t scalar_size(BaseType t) {
    switch (t) {
      case BaseType::Bool:
      case BaseType::Byte:
      case BaseType::UByte:
      case BaseType::UType: return 1;
      case BaseType::Short:
      case BaseType::UShort: return 2;
      case BaseType::Int:
      case BaseType::UInt:
      case BaseType::Float: return 4;
      case BaseType::Long:
      case BaseType::ULong:
      case BaseType::Double: return 8;
      default: return 0;
    }
  }
  static bool is_unsigned(BaseType t) {
    return t == BaseType::UByte || t == BaseType::UShort || t == BaseType::UInt || t == BaseType::ULong ||
           t == BaseType::UType;
  }

  // The C++ type of a scalar or enum-typed scalar (`index` >= 0 on an integer type: an enum).
  std::string value_type(BaseType t, int index) {
    if (index >= 0 && t != BaseType::Obj && t != BaseType::Union && t != BaseType::UType) {
      const reflection::Enum* e = schema->enums()->Get(static_cast<flatbuffers::uoffset_t>(index));
      if (!e->is_union()) {
        need(e->declaration_file());
        return qualified(e->name()->str());
      }
    }
    const char* s = scalar_cxx(t);
    return s ? s : "";
  }

  static std::string integer_literal(BaseType t, std::int64_t v) {
    if (is_unsigned(t)) return std::to_string(static_cast<std::uint64_t>(v)) + "ull";
    if (v == INT64_MIN) return "(-9223372036854775807ll - 1)";
    return std::to_string(v) + "ll";
  }
  static std::string real_literal(BaseType t, double v) {
    const bool f = t == BaseType::Float;
    if (std::isnan(v)) return f ? "__builtin_nanf(\"\")" : "__builtin_nan(\"\")";
    if (std::isinf(v)) return std::string(v < 0 ? "-" : "") + (f ? "__builtin_inff()" : "__builtin_inf()");
    char buf[64];
    std::snprintf(buf, sizeof buf, f ? "%.9g" : "%.17g", v);
    std::string s = buf;
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return f ? s + "f" : s;
  }

  // ---- enums ------------------------------------------------------------------------------
  void emit_enum(std::ostream& o, const reflection::Enum* e) {
    const auto [ns, name] = split_name(e->name()->str());
    const BaseType ut = e->underlying_type()->base_type();
    o << "/// " << e->name()->str() << " (enum).\n";
    o << "enum class " << cxx_name(name) << " : " << scalar_cxx(ut) << " {\n";
    for (const reflection::EnumVal* v : *e->values())
      o << "  " << cxx_name(v->name()->str()) << " = "
        << (is_unsigned(ut) ? std::to_string(static_cast<std::uint64_t>(v->value())) : std::to_string(v->value()))
        << ",\n";
    o << "};\n\n";
  }

  // ---- structs ----------------------------------------------------------------------------
  std::string struct_member_type(const reflection::Type* ty, std::string& array_suffix) {
    BaseType t = ty->base_type();
    int index = ty->index();
    if (t == BaseType::Array) {
      array_suffix = "[" + std::to_string(ty->fixed_length()) + "]";
      t = ty->element();
    }
    if (t == BaseType::Obj) {
      const reflection::Object* s = schema->objects()->Get(static_cast<flatbuffers::uoffset_t>(index));
      need(s->declaration_file());
      return qualified(s->name()->str());
    }
    return value_type(t, index);
  }

  void emit_struct(std::ostream& o, const reflection::Object* s) {
    const auto [ns, raw] = split_name(s->name()->str());
    const std::string name = cxx_name(raw);
    std::vector<const reflection::Field*> fields(s->fields()->begin(), s->fields()->end());
    std::sort(fields.begin(), fields.end(), [](auto* a, auto* b) { return a->offset() < b->offset(); });
    std::set<std::string> names;
    for (const auto* f : fields) names.insert(cxx_name(f->name()->str()));
    if (names.count(name))
      throw refused("struct " + s->name()->str() + ": a field has the struct's own name '" + name + "'");
    o << "/// " << s->name()->str() << " (struct, " << s->bytesize() << " bytes, align " << s->minalign()
      << "): flatc's layout.\n";
    o << "struct alignas(" << s->minalign() << ") " << name << " {\n";
    int pad_no = 0;
    for (const auto* f : fields) {
      std::string arr;
      const std::string ty = struct_member_type(f->type(), arr);
      o << "  " << ty << " " << cxx_name(f->name()->str()) << arr << ";\n";
      if (f->padding()) {
        std::string pad;
        do pad = "padding" + std::to_string(pad_no++) + "_";
        while (names.count(pad));
        o << "  std::uint8_t " << pad << "[" << f->padding() << "];\n";
      }
    }
    o << "};\n";
    o << "static_assert(sizeof(" << name << ") == " << s->bytesize() << " && alignof(" << name
      << ") == " << s->minalign() << ", \"flatc layout of " << s->name()->str() << "\");\n";
    for (const auto* f : fields)
      o << "static_assert(offsetof(" << name << ", " << cxx_name(f->name()->str()) << ") == " << f->offset()
        << ", \"flatc offset of " << s->name()->str() << "." << f->name()->str() << "\");\n";
    o << "\n";
  }

  // ---- tables -----------------------------------------------------------------------------
  static std::string type_id_literal(const std::string& ident) { return "::ringflow::type_id_of(\"" + ident + "\")"; }

  std::string table_type_id(const reflection::Object* t) {
    const reflection::Object* root = schema->root_table();
    std::string ident;
    if (root == t && schema->file_ident() && schema->file_ident()->size()) ident = schema->file_ident()->str();
    if (t->attributes())
      for (const reflection::KeyValue* kv : *t->attributes())
        if (kv->key()->str() == "ringflow_id") {
          if (!kv->value() || kv->value()->size() != 4)
            throw refused("table " + t->name()->str() + ": ringflow_id must be exactly 4 characters");
          if (!ident.empty() && ident != kv->value()->str())
            throw refused("table " + t->name()->str() + ": ringflow_id \"" + kv->value()->str() +
                          "\" differs from the file identifier \"" + ident + "\" of the root type");
          ident = kv->value()->str();
        }
    for (char c : ident)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e || c == '"' || c == '\\')
        throw refused("table " + t->name()->str() + ": type id \"" + ident + "\" must be 4 printable characters");
    return ident;
  }

  struct deferred {
    std::string decl;  // the out-of-class definition (sub-table accessors)
  };

  void emit_table(std::ostream& o, const reflection::Object* t, std::vector<std::string>& after) {
    const auto [ns, raw] = split_name(t->name()->str());
    const std::string name = cxx_name(raw);
    std::vector<const reflection::Field*> fields(t->fields()->begin(), t->fields()->end());
    std::sort(fields.begin(), fields.end(), [](auto* a, auto* b) { return a->id() < b->id(); });
    for (const auto* f : fields) {
      const std::string n = cxx_name(f->name()->str());
      if (reserved_members().count(n))
        throw refused("table " + t->name()->str() + ": field '" + f->name()->str() +
                      "' is a name ringflow's descriptors reserve (type_id_, name_, num_fields_, inline_max_, "
                      "fields_, defaults_, table_, begin_, flatc_type_); rename the field");
      if (n == name)
        throw refused("table " + t->name()->str() + ": field '" + f->name()->str() +
                      "' has the table's own name (not a valid C++ member name)");
    }
    const std::string ident = table_type_id(t);
    std::uint32_t num_fields = 0, inline_max = 0;
    for (const auto* f : fields) {
      num_fields = std::max<std::uint32_t>(num_fields, f->id() + 1u);
      if (f->deprecated()) continue;
      const BaseType bt = f->type()->base_type();
      if (const std::uint32_t sz = scalar_size(bt)) {
        inline_max += sz + (sz - 1);
      } else if (bt == BaseType::Obj) {
        const reflection::Object* s = schema->objects()->Get(static_cast<flatbuffers::uoffset_t>(f->type()->index()));
        if (s->is_struct()) inline_max += static_cast<std::uint32_t>(s->bytesize() + std::min(s->minalign(), 8) - 1);
        else inline_max += 4 + 3;
      } else {
        inline_max += 4 + 3;  // uoffset: string, vector, table, union
      }
    }

    std::ostringstream acc, add, ids, defs;
    for (const auto* f : fields) {
      const std::string fname = f->name()->str();
      const std::string n = cxx_name(fname);
      ids << "    static constexpr ::ringflow::fb::field_id " << n << " = " << f->id() << ";\n";
      if (f->deprecated()) {
        acc << "  // " << fname << ": deprecated (no accessor)\n";
        continue;
      }
      const reflection::Type* ty = f->type();
      const BaseType bt = ty->base_type();
      if (scalar_size(bt) && bt != BaseType::UType) {
        const std::string vt = value_type(bt, ty->index());
        const bool is_enum = vt != scalar_cxx(bt);
        const bool real = bt == BaseType::Float || bt == BaseType::Double;
        std::string dv = bt == BaseType::Bool ? (f->default_integer() ? "true" : "false")
                         : real               ? real_literal(bt, f->default_real())
                                              : integer_literal(bt, f->default_integer());
        if (is_enum) dv = "static_cast<" + vt + ">(" + dv + ")";
        else if (!real && bt != BaseType::Bool) dv = "static_cast<" + vt + ">(" + dv + ")";
        defs << "    static constexpr " << vt << " " << n << " = " << dv << ";\n";
        if (f->optional())
          acc << "  /// Optional scalar: absent reads as its default; table_.has(fields_::" << n << ") tells.\n";
        if (is_enum) {
          acc << "  RINGFLOW_HD " << vt << " " << n << "() const { return static_cast<" << vt << ">(table_.get<"
              << scalar_cxx(bt) << ">(fields_::" << n << ", static_cast<" << scalar_cxx(bt) << ">(defaults_::" << n
              << "))); }\n";
          add << "  RINGFLOW_HD static bool add_" << fname << "(::ringflow::fb::builder& b, " << vt
              << " v) { return b.add<" << scalar_cxx(bt) << ">(fields_::" << n << ", static_cast<" << scalar_cxx(bt)
              << ">(v)); }\n";
        } else {
          acc << "  RINGFLOW_HD " << vt << " " << n << "() const { return table_.get<" << vt << ">(fields_::" << n
              << ", defaults_::" << n << "); }\n";
          add << "  RINGFLOW_HD static bool add_" << fname << "(::ringflow::fb::builder& b, " << vt
              << " v) { return b.add<" << vt << ">(fields_::" << n << ", v); }\n";
        }
      } else if (bt == BaseType::String) {
        acc << "  RINGFLOW_HD ::ringflow::fb::string_view " << n << "() const { return table_.string(fields_::" << n
            << "); }\n";
        add << "  RINGFLOW_HD static bool add_" << fname
            << "(::ringflow::fb::builder& b, const char* s, std::uint32_t n) { return b.add_string(fields_::" << n
            << ", s, n); }\n";
      } else if (bt == BaseType::Obj) {
        const reflection::Object* s = schema->objects()->Get(static_cast<flatbuffers::uoffset_t>(ty->index()));
        need(s->declaration_file());
        const std::string st = qualified(s->name()->str());
        if (s->is_struct()) {
          acc << "  /// Copies the struct into `out`; false (and `out` untouched) when absent.\n";
          acc << "  RINGFLOW_HD bool " << n << "(" << st << "& out) const { return table_.get_struct(fields_::" << n
              << ", out); }\n";
          add << "  RINGFLOW_HD static bool add_" << fname << "(::ringflow::fb::builder& b, const " << st
              << "& v) { return b.add<" << st << ">(fields_::" << n << ", v); }\n";
        } else {
          acc << "  RINGFLOW_HD " << st << " " << n << "() const;  // sub-table (invalid view when absent)\n";
          after.push_back("namespace " + target_ns(t->name()->str()) + " {\nRINGFLOW_HD inline auto " + name +
                          "::" + n + "() const -> " + st + " { return " + st + "{table_.table(fields_::" + n +
                          ")}; }\n}  // namespace " + target_ns(t->name()->str()) + "\n");
        }
      } else if (bt == BaseType::Vector) {
        const BaseType et = ty->element();
        std::string elem;
        if (et == BaseType::UByte && ty->index() < 0) {
          acc << "  RINGFLOW_HD ::ringflow::fb::bytes_view " << n << "() const { return table_.nested(fields_::" << n
              << "); }\n";
          add << "  RINGFLOW_HD static bool add_" << fname
              << "(::ringflow::fb::builder& b, const std::uint8_t* p, std::uint32_t n) { return b.add_bytes(fields_::"
              << n << ", p, n); }\n";
          continue;
        }
        if (scalar_size(et) && et != BaseType::UType) {
          elem = value_type(et, ty->index());
        } else if (et == BaseType::Obj) {
          const reflection::Object* s = schema->objects()->Get(static_cast<flatbuffers::uoffset_t>(ty->index()));
          if (s->is_struct()) {
            need(s->declaration_file());
            elem = qualified(s->name()->str());
          }
        }
        if (elem.empty()) {
          acc << "  // " << fname << ": a vector of " << (et == BaseType::String ? "strings" : "tables or unions")
              << " has no device-portable accessor (read it on the host with flatc's generated code)\n";
          continue;
        }
        acc << "  RINGFLOW_HD ::ringflow::fb::vector_view<" << elem << "> " << n << "() const { return table_.vector<"
            << elem << ">(fields_::" << n << "); }\n";
        add << "  RINGFLOW_HD static bool add_" << fname << "(::ringflow::fb::builder& b, const " << elem
            << "* p, std::uint32_t n) { return b.add_vector<" << elem << ">(fields_::" << n << ", p, n); }\n";
        add << "  /// Reserves the vector and returns a handle to write its elements in place.\n";
        add << "  RINGFLOW_HD static ::ringflow::fb::vector_out<" << elem << "> add_" << fname
            << "(::ringflow::fb::builder& b, std::uint32_t n) { return b.add_vector<" << elem << ">(fields_::" << n
            << ", n); }\n";
      } else {
        acc << "  // " << fname << ": a union (or its type tag) has no device-portable accessor\n";
        if (bt == BaseType::UType) {
          // The tag itself is a plain ubyte: readable.
          acc << "  RINGFLOW_HD std::uint8_t " << n << "() const { return table_.get<std::uint8_t>(fields_::" << n
              << ", 0); }\n";
        }
      }
    }

    o << "/// " << t->name()->str() << " (table"
      << (ident.empty() ? ", not a message type: no identifier" : ", type id \"" + ident + "\"") << ").\n";
    o << "struct " << name << " {\n";
    o << "  static constexpr ::ringflow::type_id type_id_ = " << (ident.empty() ? "0" : type_id_literal(ident))
      << ";\n";
    o << "  static constexpr const char* name_ = \"" << t->name()->str() << "\";\n";
    if (const std::string fq = flatc_qualified(t->name()->str()); !fq.empty())
      o << "  /// flatc's class of this table (" << basename_of(schema_file) << "'s _generated.h completes it).\n"
        << "  using flatc_type_ = " << fq << ";\n";
    o << "  static constexpr ::ringflow::fb::field_id num_fields_ = " << num_fields << ";\n";
    o << "  /// Inline bytes a writer reserves: each field's size plus its worst-case alignment padding.\n";
    o << "  static constexpr std::uint32_t inline_max_ = " << inline_max << ";\n";
    o << "  struct fields_ {\n" << ids.str() << "  };\n";
    o << "  struct defaults_ {\n" << defs.str() << "  };\n\n";
    o << "  ::ringflow::fb::table_view table_;\n\n";
    o << acc.str();
    o << "\n  /// Starts a buffer whose root is this table (identifier, field count, inline room).\n";
    o << "  RINGFLOW_HD static bool begin_(::ringflow::fb::builder& b) { return b.begin(type_id_, num_fields_, "
         "inline_max_); }\n";
    o << add.str();
    o << "};\n\n";
  }

  // Structs in dependency order (a struct may contain structs).
  void order_structs(const reflection::Object* s, std::set<const reflection::Object*>& seen,
                     std::vector<const reflection::Object*>& out) {
    if (!seen.insert(s).second) return;
    for (const auto* f : *s->fields()) {
      const reflection::Type* ty = f->type();
      const BaseType t = ty->base_type() == BaseType::Array ? ty->element() : ty->base_type();
      if (t == BaseType::Obj) {
        const reflection::Object* d = schema->objects()->Get(static_cast<flatbuffers::uoffset_t>(ty->index()));
        if (declared_here(d->declaration_file())) order_structs(d, seen, out);
      }
    }
    out.push_back(s);
  }

  std::string run(const std::string& out_name) {
    std::ostringstream body;
    // Group by target namespace, keeping the order: enums, structs, table forward declarations,
    // tables, then the out-of-class sub-table accessors.
    std::vector<const reflection::Enum*> enums;
    for (const reflection::Enum* e : *schema->enums())
      if (!e->is_union() && declared_here(e->declaration_file())) enums.push_back(e);
    std::vector<const reflection::Object*> structs, tables;
    std::set<const reflection::Object*> seen;
    for (const reflection::Object* o : *schema->objects()) {
      if (!declared_here(o->declaration_file())) continue;
      if (o->is_struct()) order_structs(o, seen, structs);
      else tables.push_back(o);
    }
    auto open = [&](std::ostream& o, const std::string& ns) { o << "namespace " << ns << " {\n\n"; };
    auto close = [&](std::ostream& o, const std::string& ns) { o << "}  // namespace " << ns << "\n\n"; };
    for (const auto* e : enums) {
      open(body, target_ns(e->name()->str()));
      emit_enum(body, e);
      close(body, target_ns(e->name()->str()));
    }
    for (const auto* s : structs) {
      open(body, target_ns(s->name()->str()));
      emit_struct(body, s);
      close(body, target_ns(s->name()->str()));
    }
    for (const auto* t : tables) {
      const auto [flatc_ns, raw] = split_name(t->name()->str());
      if (flatc_qualified(t->name()->str()).empty()) continue;  // flatc's class is the descriptor's namespace
      if (flatc_ns.empty()) body << "struct " << cxx_name(raw) << ";  // flatc's class\n\n";
      else
        body << "namespace " << flatc_ns << " {\nstruct " << cxx_name(raw) << ";  // flatc's class\n}  // namespace "
             << flatc_ns << "\n\n";
    }
    for (const auto* t : tables) {
      open(body, target_ns(t->name()->str()));
      body << "struct " << cxx_name(split_name(t->name()->str()).second) << ";\n\n";
      close(body, target_ns(t->name()->str()));
    }
    std::vector<std::string> after;
    for (const auto* t : tables) {
      open(body, target_ns(t->name()->str()));
      emit_table(body, t, after);
      close(body, target_ns(t->name()->str()));
    }
    for (const auto& a : after) body << a;

    std::ostringstream o;
    o << "// " << basename_of(out_name) << " — generated by ringflow_schemagen from " << schema_file
      << "; do not edit.\n";
    o << "// Device-portable descriptors of the enums, structs and tables declared in " << schema_file
      << " (see\n// ringflow/fb_view.hpp, ringflow/fb_writer.hpp and docs/KERNELS.md).\n";
    o << "#pragma once\n\n#include <cstddef>\n#include <cstdint>\n\n#include \"ringflow/fb_writer.hpp\"\n";
    for (const auto& inc : includes) o << "#include \"" << inc << "\"\n";
    o << "\n" << body.str();
    return o.str();
  }
};

int usage(const char* why) {
  std::cerr << "ringflow_schemagen: " << why
            << "\nusage: ringflow_schemagen --bfbs <file.bfbs> --schema <file.fbs> --out <file_ringflow.hpp>"
               " [--include-prefix <dir>] [--namespace <ns>]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bfbs, fbs, out, prefix, ns;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string& dst) {
      if (i + 1 >= argc) return false;
      dst = argv[++i];
      return true;
    };
    bool ok = true;
    if (a == "--bfbs") ok = value(bfbs);
    else if (a == "--schema") ok = value(fbs);
    else if (a == "--out") ok = value(out);
    else if (a == "--include-prefix") ok = value(prefix);
    else if (a == "--namespace") ok = value(ns);
    else return usage(("unknown argument '" + a + "'").c_str());
    if (!ok) return usage(("'" + a + "' needs a value").c_str());
  }
  if (bfbs.empty() || fbs.empty() || out.empty()) return usage("--bfbs, --schema and --out are required");
  std::ifstream in(bfbs, std::ios::binary);
  if (!in) {
    std::cerr << "ringflow_schemagen: cannot read " << bfbs << "\n";
    return 1;
  }
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  flatbuffers::Verifier v(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  if (!reflection::VerifySchemaBuffer(v)) {
    std::cerr << "ringflow_schemagen: " << bfbs << " is not a FlatBuffers binary schema (flatc --binary --schema)\n";
    return 1;
  }
  generator g;
  g.schema = reflection::GetSchema(data.data());
  g.schema_file = basename_of(fbs);
  g.include_prefix = prefix;
  g.ns_override = ns;
  try {
    const std::string text = g.run(out);
    const std::string tmp = out + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << text;
      if (!f.flush()) {
        std::cerr << "ringflow_schemagen: cannot write " << tmp << "\n";
        return 1;
      }
    }
    if (std::rename(tmp.c_str(), out.c_str()) != 0) {
      std::cerr << "ringflow_schemagen: cannot write " << out << "\n";
      return 1;
    }
  } catch (const refused& e) {
    std::cerr << fbs << ": ringflow_schemagen: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
