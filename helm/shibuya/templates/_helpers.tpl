{{- define "shibuya.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "shibuya.labels" -}}
app.kubernetes.io/name: shibuya
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "shibuya.selector" -}}
app.kubernetes.io/name: shibuya
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shibuya.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-api" (include "shibuya.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "shibuya.enginesNamespace" -}}
{{- default .Release.Namespace .Values.engines.namespace -}}
{{- end -}}

{{- define "shibuya.secret" -}}
{{- printf "%s-secrets" (include "shibuya.fullname" .) -}}
{{- end -}}

{{- define "shibuya.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{- /* What the chart refuses, with the reason, before anything is rendered. */ -}}
{{- define "shibuya.validate" -}}
{{- if and (not .Values.database.url) (not .Values.database.existingSecret) -}}
{{- fail "database.url (or database.existingSecret) is required: API replicas share one PostgreSQL database" -}}
{{- end -}}
{{- if and (not .Values.clickhouse.dsn) (not .Values.clickhouse.existingSecret) -}}
{{- fail "clickhouse.dsn (or clickhouse.existingSecret) is required: replicas share one ClickHouse server (the embedded engine admits one process)" -}}
{{- end -}}
{{- if gt (int .Values.worker.replicas) (int .Values.kafka.partitions) -}}
{{- fail (printf "worker.replicas (%d) exceeds kafka.partitions (%d): the extra workers would get no partition" (int .Values.worker.replicas) (int .Values.kafka.partitions)) -}}
{{- end -}}
{{- if ge (int .Values.api.minAvailable) (int .Values.api.replicas) -}}
{{- fail "api.minAvailable must be below api.replicas, or no node could ever be drained" -}}
{{- end -}}
{{- if and (eq .Values.api.authMode "none") -}}
{{- fail "api.authMode none turns authentication off: not in a cluster" -}}
{{- end -}}
{{- end -}}
