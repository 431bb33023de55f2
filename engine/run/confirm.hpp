// Confirmation of destructive steps: --yes, or a typed "yes" on a terminal.
#pragma once

#include <string>

namespace rb::run {

class confirmer {
 public:
  virtual ~confirmer() = default;
  /// True when a person can be asked (stdin is a terminal).
  virtual bool interactive() const = 0;
  /// Shows the prompt and returns true only when the answer is "yes".
  virtual bool ask(const std::string& prompt) = 0;
};

/// Asks on the controlling terminal (stdin / stderr).
class terminal_confirmer final : public confirmer {
 public:
  bool interactive() const override;
  bool ask(const std::string& prompt) override;
};

}  // namespace rb::run
