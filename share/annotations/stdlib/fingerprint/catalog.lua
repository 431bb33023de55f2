---@meta fingerprint.catalog
-- stdlib fingerprint.catalog: what a fingerprint reads from the catalogs (used by fingerprint.take).

local catalog = {}

---@param db RunbookDb
---@param schemas? string[]
---@param data boolean
---@return table
function catalog.read(db, schemas, data) end

return catalog
