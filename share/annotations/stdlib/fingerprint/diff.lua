---@meta fingerprint.diff
-- stdlib fingerprint.diff: how two fingerprints differ, in words (used by fingerprint.diff).

local diff = {}

---@param a table
---@param b table
---@return string[]
function diff.diff(a, b) end

return diff
