{{- define "jobline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "jobline.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "jobline.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "jobline.serviceAccountName" -}}
{{- default (include "jobline.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The operator's permissions: exactly the verbs it uses (see the README's RBAC table). */}}
{{- define "jobline.rules" -}}
- apiGroups: [jobline.dev]
  resources: [pipelines]
  verbs: [get, list, watch]
- apiGroups: [jobline.dev]
  resources: [pipelinejobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [jobline.dev]
  resources: [pipelines/status, pipelinejobs/status]
  verbs: [patch]
# A Job's ownerReference to its run blocks the run's deletion until the Job is gone;
# where OwnerReferencesPermissionEnforcement is on (OpenShift), setting that needs this.
- apiGroups: [jobline.dev]
  resources: [pipelinejobs/finalizers]
  verbs: [update]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
# patch: only to remove the operator's own finalizer once a pod's end is recorded.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, patch]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# list, watch: why a Job cannot create its pod is in the Job controller's FailedCreate
# Events, watched with a field selector.
- apiGroups: [""]
  resources: [events]
  verbs: [create, list, watch]
# Kueue's Workloads say why Kueue holds a run's Job (quota, preemption). Read only; on a
# cluster without Kueue the rule grants nothing.
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads]
  verbs: [get, list, watch]
{{- end -}}

{{/* The server's pods: a name of their own, so the operator's selector never matches them. */}}
{{- define "jobline.serverSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-server
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The log archive's settings, the same for the operator and the server. */}}
{{- define "jobline.archiveEnv" -}}
{{- with .Values.logArchive }}
{{- if .bucket }}
- {name: JOBLINE_ARCHIVE_BUCKET, value: {{ .bucket | quote }}}
{{- with .endpoint }}
- {name: JOBLINE_ARCHIVE_ENDPOINT, value: {{ . | quote }}}
{{- end }}
{{- with .region }}
- {name: JOBLINE_ARCHIVE_REGION, value: {{ . | quote }}}
{{- end }}
{{- with .prefix }}
- {name: JOBLINE_ARCHIVE_PREFIX, value: {{ . | quote }}}
{{- end }}
{{- if .caConfigMap }}
- {name: JOBLINE_ARCHIVE_CA_FILE, value: /etc/jobline/archive-ca/{{ .caKey }}}
{{- end }}
{{- with .existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ . }}, key: AWS_ACCESS_KEY_ID}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ . }}, key: AWS_SECRET_ACCESS_KEY}}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "jobline.archiveCaMount" -}}
{{- if and .Values.logArchive.bucket .Values.logArchive.caConfigMap }}
- {name: archive-ca, mountPath: /etc/jobline/archive-ca, readOnly: true}
{{- end }}
{{- end -}}

{{- define "jobline.archiveCaVolume" -}}
{{- if and .Values.logArchive.bucket .Values.logArchive.caConfigMap }}
- name: archive-ca
  configMap: {name: {{ .Values.logArchive.caConfigMap }}}
{{- end }}
{{- end -}}
