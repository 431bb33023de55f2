// Secret values known to this process, and redaction of them from any text.
#pragma once

#include <string>

namespace rb::secrets {

/// Registers a value that must never be shown (a password, a token). Values shorter than
/// four characters are not registered: redacting them would garble ordinary text.
void add(const std::string& value);
/// `text` with every registered secret replaced by "***".
std::string redact(std::string text);
/// True when at least one secret is registered.
bool any();

}  // namespace rb::secrets
