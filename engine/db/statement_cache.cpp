// Prepared statements of one session: the caller's INSERT/UPDATE/DELETE, run a second time, is
// prepared (parsed and planned once) and executed by name from then on.
#include "engine/db/statement_cache.hpp"

#include <cctype>

#include "engine/db/connection_impl.hpp"

namespace rb::db {
namespace detail {

bool statement_cache::preparable(const std::string& sql) {
  std::size_t i = 0;
  while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
  std::string head;
  for (; i < sql.size() && head.size() < 6 && std::isalpha(static_cast<unsigned char>(sql[i])); ++i)
    head += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i])));
  if (head != "INSERT" && head != "UPDATE" && head != "DELETE") return false;
  std::string upper;
  upper.reserve(sql.size());
  for (char c : sql) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return upper.find("RETURNING") == std::string::npos && sql.find(';') == std::string::npos;
}

const std::string* statement_cache::find(const std::string& sql) const {
  auto it = m_prepared.find(sql);
  return it == m_prepared.end() ? nullptr : &it->second;
}

std::optional<std::string> statement_cache::due(const std::string& sql) {
  if (!m_succeeded_once.count(sql) || m_prepared.size() >= 256) return std::nullopt;
  return "rb_p" + std::to_string(++m_seq);
}

const std::string& statement_cache::add(const std::string& sql, std::string name) {
  return m_prepared.emplace(sql, std::move(name)).first->second;
}

void statement_cache::succeeded(const std::string& sql) {
  if (m_succeeded_once.size() > 4096) m_succeeded_once.clear();
  m_succeeded_once.emplace(sql, 1);
}

void statement_cache::clear() {
  m_prepared.clear();
  m_succeeded_once.clear();
}

}  // namespace detail

pqxx::result connection::impl::exec_bound(const std::string& what, const std::string& sql,
                                          const std::vector<param>& params, bool user_sql) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (user_sql && detail::statement_cache::preparable(sql)) {
    const std::string* name = prepared.find(sql);
    if (!name) {
      if (auto fresh = prepared.due(sql)) {
        pq->prepare(*fresh, sql);
        name = &prepared.add(sql, std::move(*fresh));
      }
    }
    if (name) {
      return round_trip(what, sql, trip{.user_sql = user_sql},
                        [&] { return work->exec_prepared(*name, pqxx::prepare::make_dynamic_params(values)); });
    }
    pqxx::result r = round_trip(what, sql, trip{.user_sql = user_sql},
                                [&] { return work->exec_params(sql, pqxx::prepare::make_dynamic_params(values)); });
    prepared.succeeded(sql);
    return r;
  }
  return round_trip(what, sql, trip{.user_sql = user_sql},
                    [&] { return work->exec_params(sql, pqxx::prepare::make_dynamic_params(values)); });
}

}  // namespace rb::db
