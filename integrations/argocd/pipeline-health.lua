-- Argo CD health of a jobline.dev Pipeline (resource.customizations.health.jobline.dev_Pipeline).
local hs = {status = "Progressing", message = "waiting for the operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  return hs
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    if condition.status == "False" then
      hs.status = "Degraded"
      hs.message = (condition.reason or "") .. ": " .. (condition.message or "")
      return hs
    end
    for _, blocked in ipairs(obj.status.conditions) do
      if blocked.type == "ScheduleBlocked" and blocked.status == "True" then
        hs.status = "Degraded"
        hs.message = (blocked.reason or "") .. ": " .. (blocked.message or "")
        return hs
      end
    end
    if obj.spec ~= nil and obj.spec.suspend == true and obj.spec.schedule ~= nil then
      hs.status = "Suspended"
      hs.message = "the schedule is suspended"
      return hs
    end
    hs.status = "Healthy"
    hs.message = condition.message or "the spec is valid"
    return hs
  end
end
return hs
