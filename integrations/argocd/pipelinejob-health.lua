-- Argo CD health of a jobline.dev PipelineJob (resource.customizations.health.jobline.dev_PipelineJob).
local hs = {status = "Progressing", message = "waiting for the operator"}
local needs_attention = {
  ImagePullFailed = true, ConfigError = true, MountFailed = true, StartFailed = true,
  Unschedulable = true, PodCreationFailed = true, Inadmissible = true, KueueNotInstalled = true,
}
if obj.status == nil or obj.status.phase == nil then
  return hs
end
local phase = obj.status.phase
local reason = obj.status.reason or ""
local message = obj.status.message or ""
if phase == "COMPLETE" then
  hs.status = "Healthy"
elseif phase == "ERROR" then
  hs.status = "Degraded"
elseif phase == "STOPPED" then
  -- A timeout is a failure; a stop asked for (by a person, Replace or Forbid) is not.
  if reason == "DeadlineExceeded" then
    hs.status = "Degraded"
  else
    hs.status = "Suspended"
  end
elseif phase == "QUEUED" and needs_attention[reason] then
  -- Its pod cannot start until a person fixes something (a Secret, an image, a quota).
  hs.status = "Degraded"
else -- QUEUED, RUNNING, STOPPING
  hs.status = "Progressing"
end
hs.message = phase .. " (" .. reason .. "): " .. message
return hs
