#include "policy/internal/constant_expression.h"

#include <charconv>
#include <cstdlib>
#include <vector>

#include "absl/strings/ascii.h"

namespace pgb::policy::internal {
namespace {

using Kind = ConstantValue::Kind;

// Three-valued logic plus "depends on the row".
enum class Truth : uint8_t { kFalse, kTrue, kNull, kRowDependent };

ConstantValue Make(Kind kind) {
  ConstantValue v;
  v.kind = kind;
  return v;
}
ConstantValue MakeBool(bool b) {
  ConstantValue v = Make(Kind::kBool);
  v.boolean = b;
  return v;
}
ConstantValue MakeInt(int64_t i) {
  ConstantValue v = Make(Kind::kInt);
  v.integer = i;
  return v;
}
ConstantValue MakeText(std::string_view s, Kind kind = Kind::kText) {
  ConstantValue v = Make(kind);
  v.text = std::string(s);
  return v;
}
ConstantValue MakeNull() { return Make(Kind::kNull); }
ConstantValue MakeOpaque() { return Make(Kind::kOpaque); }

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

std::optional<int64_t> ParseIntText(std::string_view s) {
  s = TrimSpaces(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> ParseNumberText(std::string_view s) {
  std::string copy(TrimSpaces(s));
  if (copy.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return std::nullopt;
  return v;
}

// The last name of a qualified name list: ["pg_catalog", "int4"] -> "int4".
std::string_view LastName(object o, std::string_view key) {
  std::optional<array> names = ArrayField(o, key);
  std::string_view last;
  if (names) {
    for (element n : *names) last = StringNodeValue(n);
  }
  return last;
}

bool IsComparison(std::string_view op) {
  return op == "=" || op == "<>" || op == "!=" || op == "<" || op == "<=" || op == ">" ||
         op == ">=";
}

enum class TargetType : uint8_t { kBool, kInt, kNumeric, kText, kOther };

TargetType TypeOf(std::string_view name) {
  if (name == "bool" || name == "boolean") return TargetType::kBool;
  if (name == "int2" || name == "int4" || name == "int8" || name == "int" || name == "integer" ||
      name == "smallint" || name == "bigint") {
    return TargetType::kInt;
  }
  if (name == "numeric" || name == "decimal" || name == "float4" || name == "float8" ||
      name == "real") {
    return TargetType::kNumeric;
  }
  if (name == "text" || name == "varchar" || name == "bpchar" || name == "name" || name == "char") {
    return TargetType::kText;
  }
  return TargetType::kOther;
}

class Folder {
 public:
  // `assumed` is the truth value given to comparisons the client decides
  // through parameters; PassesEveryRow folds once with each.
  Folder(std::string_view sql, bool assumed) : sql_(sql), assumed_(assumed) {}

  std::optional<ConstantValue> Value(element e) {
    std::optional<Node> node = AsNode(e);
    if (!node) return std::nullopt;
    const object& f = node->fields;
    if (node->type == "A_Const") return Literal(f);
    if (node->type == "ParamRef") return MakeOpaque();
    if (node->type == "TypeCast") return Cast(f);
    if (node->type == "A_Expr" && StringField(f, "kind") == "AEXPR_OP" &&
        !IsComparison(LastName(f, "name"))) {
      return Arithmetic(f);
    }
    if (node->type == "A_Expr" || node->type == "BoolExpr" || node->type == "NullTest" ||
        node->type == "BooleanTest" || node->type == "SubLink") {
      Truth t = Condition(e);
      switch (t) {
        case Truth::kTrue:
          return MakeBool(true);
        case Truth::kFalse:
          return MakeBool(false);
        case Truth::kNull:
          return MakeNull();
        case Truth::kRowDependent:
          break;
      }
      return std::nullopt;
    }
    if (node->type == "CoalesceExpr") return Coalesce(f);
    return std::nullopt;
  }

  Truth Condition(element e) {
    std::optional<Node> node = AsNode(e);
    if (!node) return Truth::kRowDependent;
    const object& f = node->fields;
    if (node->type == "BoolExpr") return Logic(f);
    if (node->type == "A_Expr") return Comparison(f);
    if (node->type == "NullTest") return NullTest(f);
    if (node->type == "BooleanTest") return BooleanTest(f);
    if (node->type == "SubLink") return SubLink(f);
    std::optional<ConstantValue> v = Value(e);
    return v ? ToTruth(*v) : Truth::kRowDependent;
  }

 private:
  // A value in a boolean position: unknown-typed literals are read as
  // booleans; anything that is not boolean is an error at the server.
  Truth ToTruth(const ConstantValue& v) {
    switch (v.kind) {
      case Kind::kNull:
        return Truth::kNull;
      case Kind::kBool:
        return v.boolean ? Truth::kTrue : Truth::kFalse;
      case Kind::kText:
        if (std::optional<bool> b = ParseBoolText(v.text)) return *b ? Truth::kTrue : Truth::kFalse;
        return Truth::kRowDependent;
      case Kind::kOpaque:
        return assumed_ ? Truth::kTrue : Truth::kFalse;
      case Kind::kInt:
      case Kind::kNumeric:
        return Truth::kRowDependent;
    }
    return Truth::kRowDependent;
  }

  std::optional<ConstantValue> Literal(object f) {
    if (BoolField(f, "isnull")) return MakeNull();
    if (std::optional<object> v = ObjectField(f, "boolval"))
      return MakeBool(BoolField(*v, "boolval"));
    if (std::optional<object> v = ObjectField(f, "ival")) {
      if (Field(*v, "ival")) return MakeInt(IntField(*v, "ival"));
      return ZeroOrNegative(IntField(f, "location"));
    }
    if (std::optional<object> v = ObjectField(f, "fval")) {
      return MakeText(StringField(*v, "fval"), Kind::kNumeric);
    }
    if (std::optional<object> v = ObjectField(f, "sval")) return MakeText(StringField(*v, "sval"));
    return std::nullopt;  // bit strings
  }

  // libpg_query 15-4.0.0 writes an integer constant's value only when it is
  // positive: `0` and `-5` both come out as "ival": {}. The text at the
  // constant's location tells them apart.
  ConstantValue ZeroOrNegative(int64_t location) {
    if (location >= 0 && static_cast<size_t>(location) < sql_.size()) {
      std::string_view rest = sql_.substr(static_cast<size_t>(location));
      if (absl::ascii_isdigit(static_cast<unsigned char>(rest.front()))) return MakeInt(0);
      if (rest.front() == '-') {
        rest.remove_prefix(1);
        size_t digits = 0;
        while (digits < rest.size() &&
               absl::ascii_isdigit(static_cast<unsigned char>(rest[digits]))) {
          ++digits;
        }
        if (digits > 0) {
          if (std::optional<int64_t> v = ParseIntText(rest.substr(0, digits))) return MakeInt(-*v);
        }
      }
    }
    return MakeOpaque();
  }

  std::optional<ConstantValue> Cast(object f) {
    std::optional<element> arg = Field(f, "arg");
    std::optional<object> type_name = ObjectField(f, "typeName");
    if (!arg || !type_name || Field(*type_name, "arrayBounds")) return std::nullopt;
    std::optional<ConstantValue> v = Value(*arg);
    if (!v) return std::nullopt;
    if (v->kind == Kind::kNull || v->kind == Kind::kOpaque) return v;
    switch (TypeOf(LastName(*type_name, "names"))) {
      case TargetType::kBool:
        if (v->kind == Kind::kBool) return v;
        if (v->kind == Kind::kInt) return MakeBool(v->integer != 0);
        if (v->kind == Kind::kText) {
          if (std::optional<bool> b = ParseBoolText(v->text)) return MakeBool(*b);
        }
        return std::nullopt;
      case TargetType::kInt:
        if (v->kind == Kind::kInt) return v;
        if (v->kind == Kind::kBool) return MakeInt(v->boolean ? 1 : 0);
        if (v->kind == Kind::kText || v->kind == Kind::kNumeric) {
          if (std::optional<int64_t> i = ParseIntText(v->text)) return MakeInt(*i);
        }
        return std::nullopt;
      case TargetType::kNumeric:
        if (v->kind == Kind::kInt) {
          return MakeText(std::to_string(v->integer), Kind::kNumeric);
        }
        if (v->kind == Kind::kNumeric) return v;
        if (v->kind == Kind::kText && ParseNumberText(v->text)) {
          return MakeText(v->text, Kind::kNumeric);
        }
        return std::nullopt;
      case TargetType::kText:
        if (v->kind == Kind::kText) return v;
        if (v->kind == Kind::kInt) return MakeText(std::to_string(v->integer));
        if (v->kind == Kind::kBool) return MakeText(v->boolean ? "true" : "false");
        if (v->kind == Kind::kNumeric) return MakeText(v->text);
        return std::nullopt;
      case TargetType::kOther:
        return std::nullopt;
    }
    return std::nullopt;
  }

  std::optional<ConstantValue> Coalesce(object f) {
    std::optional<array> args = ArrayField(f, "args");
    if (!args) return std::nullopt;
    for (element a : *args) {
      std::optional<ConstantValue> v = Value(a);
      if (!v) return std::nullopt;
      if (v->kind != Kind::kNull) return v;
    }
    return MakeNull();
  }

  // + - * on integers, unary minus; nullopt on overflow or anything else.
  std::optional<ConstantValue> Arithmetic(object f) {
    if (StringField(f, "kind") != "AEXPR_OP") return std::nullopt;
    std::string_view op = LastName(f, "name");
    std::optional<element> l = Field(f, "lexpr");
    std::optional<element> r = Field(f, "rexpr");
    if (!r) return std::nullopt;
    std::optional<ConstantValue> right = Value(*r);
    if (!right) return std::nullopt;
    std::optional<ConstantValue> left;
    if (l) {
      left = Value(*l);
      if (!left) return std::nullopt;
    } else if (op == "-" || op == "+") {
      left = MakeInt(0);
    } else {
      return std::nullopt;
    }
    if (left->kind == Kind::kOpaque || right->kind == Kind::kOpaque) return MakeOpaque();
    if (left->kind == Kind::kNull || right->kind == Kind::kNull) return MakeNull();
    std::optional<int64_t> a = AsInt(*left);
    std::optional<int64_t> b = AsInt(*right);
    if (!a || !b) return std::nullopt;
    int64_t out = 0;
    bool overflow = true;
    if (op == "+") overflow = __builtin_add_overflow(*a, *b, &out);
    if (op == "-") overflow = __builtin_sub_overflow(*a, *b, &out);
    if (op == "*") overflow = __builtin_mul_overflow(*a, *b, &out);
    if (overflow) return std::nullopt;
    return MakeInt(out);
  }

  static std::optional<int64_t> AsInt(const ConstantValue& v) {
    if (v.kind == Kind::kInt) return v.integer;
    if (v.kind == Kind::kText) return ParseIntText(v.text);
    return std::nullopt;
  }

  Truth Logic(object f) {
    std::string_view op = StringField(f, "boolop");
    std::optional<array> args = ArrayField(f, "args");
    if (!args) return Truth::kRowDependent;
    std::vector<Truth> values;
    for (element a : *args) values.push_back(Condition(a));
    auto any = [&](Truth t) {
      for (Truth v : values) {
        if (v == t) return true;
      }
      return false;
    };
    if (op == "NOT_EXPR") {
      if (values.size() != 1) return Truth::kRowDependent;
      if (values[0] == Truth::kTrue) return Truth::kFalse;
      if (values[0] == Truth::kFalse) return Truth::kTrue;
      return values[0];
    }
    if (op == "AND_EXPR") {
      if (any(Truth::kFalse)) return Truth::kFalse;
      if (any(Truth::kRowDependent)) return Truth::kRowDependent;
      if (any(Truth::kNull)) return Truth::kNull;
      return Truth::kTrue;
    }
    if (op == "OR_EXPR") {
      if (any(Truth::kTrue)) return Truth::kTrue;
      if (any(Truth::kRowDependent)) return Truth::kRowDependent;
      if (any(Truth::kNull)) return Truth::kNull;
      return Truth::kFalse;
    }
    return Truth::kRowDependent;
  }

  // Whether two ColumnRefs name the same column: `id = id` selects every row
  // where id is not null, which is every row a careless statement meant.
  static bool SameColumn(element a, element b) {
    std::optional<Node> x = AsNode(a);
    std::optional<Node> y = AsNode(b);
    if (!x || !y || x->type != "ColumnRef" || y->type != "ColumnRef") return false;
    std::optional<array> fx = ArrayField(x->fields, "fields");
    std::optional<array> fy = ArrayField(y->fields, "fields");
    if (!fx || !fy || fx->size() != fy->size()) return false;
    auto ix = fx->begin();
    auto iy = fy->begin();
    for (; ix != fx->end(); ++ix, ++iy) {
      std::string_view nx = StringNodeValue(*ix);
      if (nx.empty() || nx != StringNodeValue(*iy)) return false;
    }
    return true;
  }

  Truth Comparison(object f) {
    std::string_view kind = StringField(f, "kind");
    std::string_view op = LastName(f, "name");
    std::optional<element> l = Field(f, "lexpr");
    std::optional<element> r = Field(f, "rexpr");
    if (!l || !r) return Truth::kRowDependent;
    if (kind == "AEXPR_OP" || kind == "AEXPR_NOT_DISTINCT") {
      if ((op == "=" || op == "<=" || op == ">=") && SameColumn(*l, *r)) return Truth::kTrue;
    }
    if (kind == "AEXPR_IN") return In(*l, *r, op);
    if (kind == "AEXPR_BETWEEN" || kind == "AEXPR_NOT_BETWEEN") {
      return Between(*l, *r, kind == "AEXPR_NOT_BETWEEN");
    }
    if (kind != "AEXPR_OP" && kind != "AEXPR_DISTINCT" && kind != "AEXPR_NOT_DISTINCT") {
      return Truth::kRowDependent;
    }
    std::optional<ConstantValue> left = Value(*l);
    std::optional<ConstantValue> right = Value(*r);
    if (!left || !right) return Truth::kRowDependent;
    if (kind == "AEXPR_OP") return Compare(*left, *right, op);
    // IS [NOT] DISTINCT FROM: nulls compare as values.
    bool distinct = kind == "AEXPR_DISTINCT";
    if (left->kind == Kind::kNull || right->kind == Kind::kNull) {
      bool both = left->kind == Kind::kNull && right->kind == Kind::kNull;
      if (left->kind == Kind::kOpaque || right->kind == Kind::kOpaque) return Assumed();
      return (both != distinct) ? Truth::kTrue : Truth::kFalse;
    }
    Truth eq = Compare(*left, *right, "=");
    if (!distinct || eq == Truth::kRowDependent) return eq;
    return eq == Truth::kTrue ? Truth::kFalse : Truth::kTrue;
  }

  Truth Assumed() const { return assumed_ ? Truth::kTrue : Truth::kFalse; }

  Truth Compare(const ConstantValue& a, const ConstantValue& b, std::string_view op) {
    if (!IsComparison(op)) return Truth::kRowDependent;
    if (a.kind == Kind::kOpaque || b.kind == Kind::kOpaque) return Assumed();
    if (a.kind == Kind::kNull || b.kind == Kind::kNull) return Truth::kNull;
    int order = 0;
    if (std::optional<int> o = Order(a, b, op)) {
      order = *o;
    } else {
      return Truth::kRowDependent;
    }
    bool result = false;
    if (op == "=") {
      result = order == 0;
    } else if (op == "<>" || op == "!=") {
      result = order != 0;
    } else if (op == "<") {
      result = order < 0;
    } else if (op == "<=") {
      result = order <= 0;
    } else if (op == ">") {
      result = order > 0;
    } else {
      result = order >= 0;
    }
    return result ? Truth::kTrue : Truth::kFalse;
  }

  // -1/0/1, or nullopt when the values do not compare here (type error at
  // the server, or a text ordering that depends on the collation).
  std::optional<int> Order(const ConstantValue& a, const ConstantValue& b, std::string_view op) {
    auto sign = [](auto x, auto y) { return x < y ? -1 : (x > y ? 1 : 0); };
    if (a.kind == Kind::kText && b.kind == Kind::kText) {
      if (op != "=" && op != "<>" && op != "!=") return std::nullopt;
      return a.text == b.text ? 0 : 1;
    }
    if (a.kind == Kind::kBool || b.kind == Kind::kBool) {
      std::optional<bool> x = a.kind == Kind::kBool   ? std::optional<bool>(a.boolean)
                              : a.kind == Kind::kText ? ParseBoolText(a.text)
                                                      : std::nullopt;
      std::optional<bool> y = b.kind == Kind::kBool   ? std::optional<bool>(b.boolean)
                              : b.kind == Kind::kText ? ParseBoolText(b.text)
                                                      : std::nullopt;
      if (!x || !y) return std::nullopt;
      return sign(*x, *y);
    }
    if (a.kind == Kind::kInt && b.kind == Kind::kInt) return sign(a.integer, b.integer);
    std::optional<double> x =
        a.kind == Kind::kInt ? static_cast<double>(a.integer) : ParseNumberText(a.text);
    std::optional<double> y =
        b.kind == Kind::kInt ? static_cast<double>(b.integer) : ParseNumberText(b.text);
    if (!x || !y) return std::nullopt;
    return sign(*x, *y);
  }

  // The items of a {"List": {"items": [...]}} node (IN and BETWEEN operands).
  static std::optional<array> ListItems(element e) {
    std::optional<Node> node = AsNode(e);
    if (!node || node->type != "List") return std::nullopt;
    return ArrayField(node->fields, "items");
  }

  // x IN (a, b) (op "=") and x NOT IN (a, b) (op "<>").
  Truth In(element l, element r, std::string_view op) {
    std::optional<ConstantValue> left = Value(l);
    std::optional<array> items = ListItems(r);
    if (!left || !items) return Truth::kRowDependent;
    bool in = op == "=";
    Truth result = in ? Truth::kFalse : Truth::kTrue;
    for (element item : *items) {
      std::optional<ConstantValue> v = Value(item);
      if (!v) return Truth::kRowDependent;
      Truth t = Compare(*left, *v, in ? "=" : "<>");
      if (t == Truth::kRowDependent) return t;
      if (in && t == Truth::kTrue) return Truth::kTrue;
      if (!in && t == Truth::kFalse) return Truth::kFalse;
      if (t == Truth::kNull) result = Truth::kNull;
    }
    return result;
  }

  Truth Between(element l, element r, bool negated) {
    std::optional<ConstantValue> x = Value(l);
    std::optional<array> bounds = ListItems(r);
    if (!x || !bounds || bounds->size() != 2) return Truth::kRowDependent;
    std::optional<ConstantValue> low = Value(bounds->at(0).value_unsafe());
    std::optional<ConstantValue> high = Value(bounds->at(1).value_unsafe());
    if (!low || !high) return Truth::kRowDependent;
    Truth a = Compare(*x, *low, ">=");
    Truth b = Compare(*x, *high, "<=");
    if (a == Truth::kRowDependent || b == Truth::kRowDependent) return Truth::kRowDependent;
    Truth both = (a == Truth::kFalse || b == Truth::kFalse) ? Truth::kFalse
                 : (a == Truth::kNull || b == Truth::kNull) ? Truth::kNull
                                                            : Truth::kTrue;
    if (!negated || both == Truth::kNull) return both;
    return both == Truth::kTrue ? Truth::kFalse : Truth::kTrue;
  }

  Truth NullTest(object f) {
    std::optional<element> arg = Field(f, "arg");
    if (!arg) return Truth::kRowDependent;
    std::optional<ConstantValue> v = Value(*arg);
    if (!v) return Truth::kRowDependent;
    if (v->kind == Kind::kOpaque) return Assumed();
    bool is_null = v->kind == Kind::kNull;
    bool want_null = StringField(f, "nulltesttype") != "IS_NOT_NULL";
    return is_null == want_null ? Truth::kTrue : Truth::kFalse;
  }

  Truth BooleanTest(object f) {
    std::optional<element> arg = Field(f, "arg");
    if (!arg) return Truth::kRowDependent;
    Truth t = Condition(*arg);
    if (t == Truth::kRowDependent) return t;
    std::string_view test = StringField(f, "booltesttype");
    bool result = false;
    if (test == "IS_TRUE") result = t == Truth::kTrue;
    if (test == "IS_NOT_TRUE") result = t != Truth::kTrue;
    if (test == "IS_FALSE") result = t == Truth::kFalse;
    if (test == "IS_NOT_FALSE") result = t != Truth::kFalse;
    if (test == "IS_UNKNOWN") result = t == Truth::kNull;
    if (test == "IS_NOT_UNKNOWN") result = t != Truth::kNull;
    return result ? Truth::kTrue : Truth::kFalse;
  }

  // EXISTS (SELECT 1) and (SELECT true): sub-selects without FROM or WHERE.
  Truth SubLink(object f) {
    std::string_view type = StringField(f, "subLinkType");
    std::optional<element> sub = Field(f, "subselect");
    if (!sub) return Truth::kRowDependent;
    std::optional<Node> select = AsNode(*sub);
    if (!select || select->type != "SelectStmt") return Truth::kRowDependent;
    const object& s = select->fields;
    for (std::string_view key : {"fromClause", "whereClause", "havingClause", "limitCount",
                                 "limitOffset", "valuesLists", "larg", "groupClause"}) {
      if (Field(s, key)) return Truth::kRowDependent;
    }
    if (type == "EXISTS_SUBLINK") return Truth::kTrue;
    std::optional<array> targets = ArrayField(s, "targetList");
    if (type != "EXPR_SUBLINK" || !targets || targets->size() != 1) return Truth::kRowDependent;
    std::optional<Node> target = AsNode(targets->at(0).value_unsafe());
    if (!target || target->type != "ResTarget") return Truth::kRowDependent;
    std::optional<element> val = Field(target->fields, "val");
    return val ? Condition(*val) : Truth::kRowDependent;
  }

  std::string_view sql_;
  bool assumed_;
};

}  // namespace

std::optional<bool> ParseBoolText(std::string_view text) {
  std::string lower(TrimSpaces(text));
  for (char& ch : lower) ch = absl::ascii_tolower(static_cast<unsigned char>(ch));
  std::string_view s = lower;
  if (s.empty()) return std::nullopt;
  auto prefix_of = [&](std::string_view word, size_t min_len) {
    return s.size() >= min_len && word.starts_with(s);
  };
  if (prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || s == "1") return true;
  if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || s == "0") return false;
  return std::nullopt;
}

std::optional<ConstantValue> EvaluateConstant(element e, std::string_view sql) {
  return Folder(sql, /*assumed=*/true).Value(e);
}

bool PassesEveryRow(element condition, std::string_view sql) {
  return Folder(sql, /*assumed=*/true).Condition(condition) == Truth::kTrue ||
         Folder(sql, /*assumed=*/false).Condition(condition) == Truth::kTrue;
}

}  // namespace pgb::policy::internal
