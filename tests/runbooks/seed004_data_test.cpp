// Seed 004's data-side incident playbooks (troubleshoot.*), run for real.
#include <gtest/gtest.h>

#include "tests/runbooks/shipped_support.hpp"
