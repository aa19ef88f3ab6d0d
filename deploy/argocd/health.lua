-- Argo CD health check for cognitive-operator.dev/CognitiveServicesAccount and CognitiveServicesDeployment.
-- The operator reports kstatus conditions (Ready, Reconciling, Stalled) and status.observedGeneration.
-- Order, as in kstatus: paused, then not yet observed, then Stalled, Reconciling, Ready.
local hs = {}

local function find_condition(conditions, condition_type)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == condition_type then
      return condition
    end
  end
  return nil
end

local function is_true(condition)
  return condition ~= nil and condition.status == "True"
end

local function describe(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition ~= nil and condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end

if obj.spec ~= nil and obj.spec.reconcilePolicy == "Pause" then
  hs.status = "Suspended"
  hs.message = "reconcilePolicy is Pause"
  return hs
end

local status = obj.status or {}
local generation = obj.metadata ~= nil and obj.metadata.generation or nil
if generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = string.format("Waiting for the operator to observe generation %d", generation)
  return hs
end

local ready = find_condition(status.conditions, "Ready")
local reconciling = find_condition(status.conditions, "Reconciling")
local stalled = find_condition(status.conditions, "Stalled")

if is_true(stalled) then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
elseif is_true(reconciling) then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "Reconciling")
elseif is_true(ready) then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
elseif ready ~= nil then
  hs.status = "Progressing"
  hs.message = describe(ready, "Not ready")
else
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
end
return hs
