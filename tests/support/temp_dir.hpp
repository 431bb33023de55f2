// Temporary directories for tests, removed when the test ends.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace rb::testing {

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class temp_dir {
 public:
  explicit temp_dir(std::string_view prefix = "runbook-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return m_path; }
  /// Writes `content` to path()/relative (creating directories) and returns the full path.
  std::filesystem::path write(const std::filesystem::path& relative, std::string_view content) const;

 private:
  std::filesystem::path m_path;
};

/// The whole content of a file.
std::string read_file(const std::filesystem::path& file);

}  // namespace rb::testing
