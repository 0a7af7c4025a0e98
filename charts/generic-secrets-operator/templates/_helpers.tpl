{{/* The chart name, at most 63 characters. */}}
{{- define "gso.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object's name: the release name, followed by the chart name
unless the release name already contains it. Cluster-scoped objects use it
too, so two releases don't collide.
*/}}
{{- define "gso.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The tenant namespace: tenantNamespace, or the release namespace. */}}
{{- define "gso.tenantNamespace" -}}
{{- .Values.tenantNamespace | default .Release.Namespace -}}
{{- end -}}

{{/* Labels that select this release's pods. */}}
{{- define "gso.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gso.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "gso.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "gso.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
