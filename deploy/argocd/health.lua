-- Argo CD health check for aicore.dev/GenericSecret (generic-secrets-operator).
-- The operator reports everything in one Ready condition; a tenant-wide object
-- also maps each resource group to whether its Secret holds the current data.
local hs = {}
local generation = obj.metadata.generation
local status = obj.status or {}

local ready = nil
for _, c in ipairs(status.conditions or {}) do
  if c.type == "Ready" then
    ready = c
  end
end

-- A condition from an older generation says nothing about the current spec.
if ready == nil or status.observedGeneration ~= generation
    or (ready.observedGeneration ~= nil and ready.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local reason = ready.reason or ""
local message = ready.message or ""

if ready.status == "True" then
  -- Ready already implies replication; the map is checked so that a rotation
  -- still on its way to some resource group never shows as Healthy.
  local pending = {}
  for rg, replicated in pairs(status.resourceGroupSecretReplicationStatus or {}) do
    if replicated ~= true then
      table.insert(pending, rg)
    end
  end
  if #pending == 0 then
    hs.status = "Healthy"
    hs.message = message
  else
    table.sort(pending)
    hs.status = "Progressing"
    hs.message = #pending .. " resource group(s) awaiting the current data: "
      .. table.concat(pending, ", ")
  end
-- Still writing, or a tenant-wide secret waiting out a resource-group
-- secret's override interval: both resolve on their own.
elseif ready.status ~= "False" or reason == "Progressing" or reason == "Shadowed" then
  hs.status = "Progressing"
  hs.message = reason .. ": " .. message
else
  -- Conflict, ReplicationFailed, InvalidSpec, SourceNotFound, WrongNamespace,
  -- TenantWideQuotaExceeded, NameCollision: they need someone to act.
  hs.status = "Degraded"
  hs.message = reason .. ": " .. message
end
return hs
