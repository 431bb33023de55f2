// Watch expressions: a Pratt parser into an immutable tree, and a three-valued evaluator.
#include "engine/trigger/expression.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "engine/error.hpp"

namespace rb::trigger {

struct expression::node {
  enum class kind { literal, name, negate, logical_not, binary } k;
  value literal;           // kind::literal
  std::string name;        // kind::name
  std::string op;          // kind::binary: "and" "or" "==" "~=" "<" "<=" ">" ">=" "+" "-" "*" "/" "%"
  std::shared_ptr<const node> lhs, rhs;  // rhs only for binary
};

namespace {

using node = expression::node;
using node_ptr = std::shared_ptr<const node>;

struct token {
  enum class kind { end, number, string, name, op, lparen, rparen } k = kind::end;
  std::string text;
  double number = 0;
  std::size_t column = 0;  // 1-based
};

class parser {
 public:
  explicit parser(const std::string& text) : m_text(text) { advance(); }

  node_ptr parse() {
    node_ptr root = parse_expr(0);
    if (m_tok.k != token::kind::end) fail("unexpected '" + m_tok.text + "'");
    return root;
  }
  std::vector<std::string> names() {
    std::sort(m_names.begin(), m_names.end());
    m_names.erase(std::unique(m_names.begin(), m_names.end()), m_names.end());
    return m_names;
  }

 private:
  // Binding powers, loosest first: or, and, not, comparisons, + -, * / %, unary minus.
  static int infix_power(const token& t) {
    if (t.k != token::kind::op && t.k != token::kind::name) return -1;
    const std::string& o = t.text;
    if (o == "or") return 1;
    if (o == "and") return 2;
    if (o == "==" || o == "~=" || o == "!=" || o == "<" || o == "<=" || o == ">" || o == ">=") return 4;
    if (o == "+" || o == "-") return 5;
    if (o == "*" || o == "/" || o == "%") return 6;
    return -1;
  }

  node_ptr parse_expr(int min_power) {
    node_ptr lhs = parse_prefix();
    for (;;) {
      int power = infix_power(m_tok);
      if (power < 0 || power <= min_power) break;
      token op = m_tok;
      advance();
      if (m_tok.k == token::kind::end) fail("expected a value after '" + op.text + "'");
      node_ptr rhs = parse_expr(power);
      if (power == 4 && (is_comparison(lhs) || is_comparison(rhs)))
        fail("comparisons do not chain: write 'a < b and b < c'", op.column);
      auto n = std::make_shared<node>();
      n->k = node::kind::binary;
      n->op = op.text == "!=" ? "~=" : op.text;
      n->lhs = std::move(lhs);
      n->rhs = std::move(rhs);
      lhs = std::move(n);
    }
    return lhs;
  }

  static bool is_comparison(const node_ptr& n) {
    return n->k == node::kind::binary &&
           (n->op == "==" || n->op == "~=" || n->op == "<" || n->op == "<=" || n->op == ">" || n->op == ">=");
  }

  node_ptr parse_prefix() {
    token t = m_tok;
    auto n = std::make_shared<node>();
    switch (t.k) {
      case token::kind::number:
        advance();
        n->k = node::kind::literal;
        n->literal = t.number;
        return n;
      case token::kind::string:
        advance();
        n->k = node::kind::literal;
        n->literal = t.text;
        return n;
      case token::kind::lparen: {
        advance();
        node_ptr inner = parse_expr(0);
        if (m_tok.k != token::kind::rparen) fail("expected ')' to close the '(' at column " + std::to_string(t.column));
        advance();
        return inner;
      }
      case token::kind::op:
        if (t.text == "-") {
          advance();
          n->k = node::kind::negate;
          n->lhs = parse_expr(6);
          return n;
        }
        break;
      case token::kind::name:
        advance();
        if (t.text == "true" || t.text == "false") {
          n->k = node::kind::literal;
          n->literal = t.text == "true";
          return n;
        }
        if (t.text == "not") {
          n->k = node::kind::logical_not;
          n->lhs = parse_expr(3);  // looser than comparisons: `not x < 5` is `not (x < 5)`
          return n;
        }
        if (t.text == "and" || t.text == "or") break;
        if (t.text == "nil") fail("nil is not a value here: a metric that was not read makes the condition false", t.column);
        n->k = node::kind::name;
        n->name = t.text;
        m_names.push_back(t.text);
        return n;
      case token::kind::end:
        fail("expected a value");
      case token::kind::rparen:
        break;
    }
    fail("expected a value, found '" + t.text + "'", t.column);
  }

  [[noreturn]] void fail(const std::string& what, std::size_t column = 0) const {
    if (column == 0) column = m_tok.column;
    throw error(error_kind::bad_runbook,
                "expression '" + m_text + "': column " + std::to_string(column) + ": " + what);
  }

  void advance() {
    const std::string& s = m_text;
    while (m_pos < s.size() && std::isspace(static_cast<unsigned char>(s[m_pos]))) ++m_pos;
    m_tok = token{};
    m_tok.column = m_pos + 1;
    if (m_pos >= s.size()) return;
    char c = s[m_pos];
    if (std::isdigit(static_cast<unsigned char>(c)) || (c == '.' && m_pos + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[m_pos + 1])))) {
      std::size_t start = m_pos;
      while (m_pos < s.size() && (std::isdigit(static_cast<unsigned char>(s[m_pos])) || s[m_pos] == '.')) ++m_pos;
      if (m_pos < s.size() && (s[m_pos] == 'e' || s[m_pos] == 'E')) {
        ++m_pos;
        if (m_pos < s.size() && (s[m_pos] == '+' || s[m_pos] == '-')) ++m_pos;
        while (m_pos < s.size() && std::isdigit(static_cast<unsigned char>(s[m_pos]))) ++m_pos;
      }
      m_tok.k = token::kind::number;
      m_tok.text = s.substr(start, m_pos - start);
      auto [end, ec] = std::from_chars(m_tok.text.data(), m_tok.text.data() + m_tok.text.size(), m_tok.number);
      if (ec != std::errc() || end != m_tok.text.data() + m_tok.text.size()) fail("'" + m_tok.text + "' is not a number");
      if (m_pos < s.size() && (std::isalpha(static_cast<unsigned char>(s[m_pos])) || s[m_pos] == '_'))
        fail("'" + m_tok.text + s[m_pos] + "...' is not a number (durations and units are not values here)");
      return;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t start = m_pos;
      while (m_pos < s.size() && (std::isalnum(static_cast<unsigned char>(s[m_pos])) || s[m_pos] == '_')) ++m_pos;
      m_tok.k = token::kind::name;
      m_tok.text = s.substr(start, m_pos - start);
      return;
    }
    if (c == '\'' || c == '"') {
      std::size_t start = ++m_pos;
      while (m_pos < s.size() && s[m_pos] != c) ++m_pos;
      if (m_pos >= s.size()) fail("string not closed", start);
      m_tok.k = token::kind::string;
      m_tok.text = s.substr(start, m_pos - start);
      ++m_pos;
      return;
    }
    if (c == '(' || c == ')') {
      m_tok.k = c == '(' ? token::kind::lparen : token::kind::rparen;
      m_tok.text = std::string(1, c);
      ++m_pos;
      return;
    }
    static const char* const two[] = {"==", "~=", "!=", "<=", ">="};
    for (const char* op : two)
      if (s.compare(m_pos, 2, op) == 0) {
        m_tok.k = token::kind::op;
        m_tok.text = op;
        m_pos += 2;
        return;
      }
    if (std::string_view("<>+-*/%").find(c) != std::string_view::npos) {
      m_tok.k = token::kind::op;
      m_tok.text = std::string(1, c);
      ++m_pos;
      return;
    }
    if (c == '=') fail("'=' is assignment in Lua; compare with '=='");
    if (s.compare(m_pos, 2, "&&") == 0 || s.compare(m_pos, 2, "||") == 0 || c == '!')
      fail("use 'and', 'or' and 'not'");
    fail(std::string("unexpected character '") + c + "'");
  }

  const std::string& m_text;
  std::size_t m_pos = 0;
  token m_tok;
  std::vector<std::string> m_names;
};

bool is_nil(const value& v) { return std::holds_alternative<std::monostate>(v); }

/// Truth of a known value: true, a number other than 0, a non-empty string.
bool truth(const value& v) {
  if (auto b = std::get_if<bool>(&v)) return *b;
  if (auto d = std::get_if<double>(&v)) return *d != 0 && !std::isnan(*d);
  if (auto s = std::get_if<std::string>(&v)) return !s->empty();
  return false;
}

/// A number, or a string that is one in full (SQL numeric values may arrive as text).
std::optional<double> as_number(const value& v) {
  if (auto d = std::get_if<double>(&v)) return *d;
  if (auto s = std::get_if<std::string>(&v)) {
    double out = 0;
    const char* b = s->data();
    const char* e = b + s->size();
    auto [end, ec] = std::from_chars(b, e, out);
    if (ec == std::errc() && end == e && !s->empty()) return out;
  }
  return std::nullopt;
}

value compare(const std::string& op, const value& a, const value& b) {
  if (is_nil(a) || is_nil(b)) return {};
  int order = 0;
  auto na = as_number(a), nb = as_number(b);
  bool both_strings = std::holds_alternative<std::string>(a) && std::holds_alternative<std::string>(b);
  if (!both_strings && na && nb) {
    order = *na < *nb ? -1 : *na > *nb ? 1 : 0;
  } else if (both_strings) {
    int c = std::get<std::string>(a).compare(std::get<std::string>(b));
    order = c < 0 ? -1 : c > 0 ? 1 : 0;
  } else if (std::holds_alternative<bool>(a) && std::holds_alternative<bool>(b)) {
    if (op != "==" && op != "~=") return {};
    order = std::get<bool>(a) == std::get<bool>(b) ? 0 : 1;
  } else {
    // Different kinds (a boolean and a number): unequal, and not ordered.
    if (op == "==") return false;
    if (op == "~=") return true;
    return {};
  }
  if (op == "==") return order == 0;
  if (op == "~=") return order != 0;
  if (op == "<") return order < 0;
  if (op == "<=") return order <= 0;
  if (op == ">") return order > 0;
  return order >= 0;  // ">="
}

value arithmetic(const std::string& op, const value& a, const value& b) {
  auto na = as_number(a), nb = as_number(b);
  if (!na || !nb) return {};
  double x = *na, y = *nb;
  if ((op == "/" || op == "%") && y == 0) return {};  // unknown, never inf: errors / 0 requests
  double r = op == "+" ? x + y : op == "-" ? x - y : op == "*" ? x * y : op == "/" ? x / y : std::fmod(x, y);
  if (!std::isfinite(r)) return {};
  return r;
}

value eval(const node& n, const sample& s) {
  switch (n.k) {
    case node::kind::literal:
      return n.literal;
    case node::kind::name: {
      auto it = s.find(n.name);
      return it == s.end() ? value{} : it->second;
    }
    case node::kind::negate: {
      auto v = as_number(eval(*n.lhs, s));
      if (!v) return {};
      return -*v;
    }
    case node::kind::logical_not: {
      value v = eval(*n.lhs, s);
      if (is_nil(v)) return {};
      return !truth(v);
    }
    case node::kind::binary:
      break;
  }
  if (n.op == "and" || n.op == "or") {
    value a = eval(*n.lhs, s), b = eval(*n.rhs, s);
    bool want = n.op == "or";  // the value that decides: true for or, false for and
    if ((!is_nil(a) && truth(a) == want) || (!is_nil(b) && truth(b) == want)) return want;
    if (is_nil(a) || is_nil(b)) return {};
    return !want;
  }
  value a = eval(*n.lhs, s), b = eval(*n.rhs, s);
  if (n.op == "+" || n.op == "-" || n.op == "*" || n.op == "/" || n.op == "%") return arithmetic(n.op, a, b);
  return compare(n.op, a, b);
}

}  // namespace

expression expression::parse(const std::string& text) {
  parser p(text);
  expression e;
  e.m_text = text;
  e.m_root = p.parse();
  e.m_names = p.names();
  return e;
}

value expression::evaluate(const sample& s) const { return eval(*m_root, s); }

bool expression::holds(const sample& s) const {
  value v = evaluate(s);
  return !is_nil(v) && truth(v);
}

std::string to_string(const value& v) {
  if (is_nil(v)) return "null";
  if (auto b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto d = std::get_if<double>(&v)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", *d);
    return buf;
  }
  return "\"" + std::get<std::string>(v) + "\"";
}

}  // namespace rb::trigger
