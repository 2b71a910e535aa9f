{{/* Names, labels and shared pod fragments. One definition per concern. */}}

{{- define "synthdiv.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "synthdiv.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains (include "synthdiv.name" .) .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "synthdiv.name" .) | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "synthdiv.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "synthdiv.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* selectorLabels: pass (dict "ctx" $ "component" "mlflow") */}}
{{- define "synthdiv.selectorLabels" -}}
app.kubernetes.io/name: {{ include "synthdiv.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Pods carrying this label may reach MLflow and the Ray dashboard. */}}
{{- define "synthdiv.clientLabel" -}}
{{ include "synthdiv.fullname" . }}-client: "true"
{{- end -}}

{{/* The KubeRay operator's pod labels: `ray.dashboard.networkPolicy.operator.podLabels`, else
     the official chart's: name (nameOverride, default kuberay-operator), plus the release when
     the operator is this release's subchart. */}}
{{- define "synthdiv.operatorPodLabels" -}}
{{- $operator := .Values.ray.dashboard.networkPolicy.operator -}}
{{- $subchart := index .Values "kuberay-operator" -}}
{{- $labels := dict "app.kubernetes.io/name" ($subchart.nameOverride | default "kuberay-operator") -}}
{{- if and $subchart.enabled (not $operator.namespace) -}}
{{- $_ := set $labels "app.kubernetes.io/instance" .Release.Name -}}
{{- end -}}
{{- $operator.podLabels | default $labels | toYaml -}}
{{- end -}}

{{- define "synthdiv.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "synthdiv.containerSecurityContext" -}}
{{ toYaml .Values.containerSecurityContext }}
{{- end -}}

{{/* A Secret value kept across upgrades: reuse the live one, else generate. (dict "ctx" $ "name" n "key" k) */}}
{{- define "synthdiv.persistentRandom" -}}
{{- $live := lookup "v1" "Secret" .ctx.Release.Namespace .name -}}
{{- if and $live $live.data (hasKey $live.data .key) -}}
{{- index $live.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 40 -}}
{{- end -}}
{{- end -}}

{{/* Secret names: the user's existing Secret or the chart's own. */}}
{{- define "synthdiv.mlflowAuthSecret" -}}
{{- .Values.mlflow.auth.existingSecret | default (printf "%s-mlflow-auth" (include "synthdiv.fullname" .)) -}}
{{- end -}}

{{- define "synthdiv.postgresSecret" -}}
{{- if .Values.postgres.enabled -}}
{{- .Values.postgres.existingSecret | default (printf "%s-postgres" (include "synthdiv.fullname" .)) -}}
{{- else -}}
{{- required "externalDatabase.existingSecret is required when postgres.enabled=false" .Values.externalDatabase.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "synthdiv.postgresPasswordKey" -}}
{{- if .Values.postgres.enabled }}password{{ else }}{{ .Values.externalDatabase.passwordKey }}{{ end -}}
{{- end -}}

{{- define "synthdiv.s3Secret" -}}
{{- if .Values.objectStore.inCluster.enabled -}}
{{- .Values.objectStore.existingSecret | default (printf "%s-s3" (include "synthdiv.fullname" .)) -}}
{{- else -}}
{{- required "objectStore.existingSecret is required for an external object store" .Values.objectStore.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* What jobs use: a non-admin MLflow user and an S3 identity limited to the bucket. */}}
{{- define "synthdiv.mlflowJobSecret" -}}
{{- .Values.mlflow.auth.jobExistingSecret | default (printf "%s-mlflow-job" (include "synthdiv.fullname" .)) -}}
{{- end -}}

{{- define "synthdiv.s3JobSecret" -}}
{{- if .Values.objectStore.inCluster.enabled -}}
{{- .Values.objectStore.jobExistingSecret | default (printf "%s-s3-job" (include "synthdiv.fullname" .)) -}}
{{- else -}}
{{- .Values.objectStore.jobExistingSecret | default (include "synthdiv.s3Secret" .) -}}
{{- end -}}
{{- end -}}

{{- define "synthdiv.flaskSecret" -}}
{{- printf "%s-mlflow-flask" (include "synthdiv.fullname" .) -}}
{{- end -}}

{{/* Service accounts of Ray pods: the head's holds the autoscaler Role when autoscaling is on. */}}
{{- define "synthdiv.raySA" -}}
{{- printf "%s-ray" (include "synthdiv.fullname" .) -}}
{{- end -}}

{{- define "synthdiv.rayHeadSA" -}}
{{- if .Values.ray.autoscaling.enabled -}}
{{- printf "%s-ray-head" (include "synthdiv.fullname" .) -}}
{{- else -}}
{{- include "synthdiv.raySA" . -}}
{{- end -}}
{{- end -}}

{{/* Secrets Ray pods may reference (the admission policy allows only these). */}}
{{- define "synthdiv.raySecrets" -}}
{{- $out := list (include "synthdiv.s3JobSecret" .) -}}
{{- if .Values.mlflow.enabled }}{{ $out = append $out (include "synthdiv.mlflowJobSecret" .) }}{{ end -}}
{{- if .Values.ray.auth.enabled }}{{ $out = append $out (include "synthdiv.rayTokenSecret" .) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Generated Secrets and the bucket's PVC outlive `helm uninstall`: a reinstall must find the
     passwords the kept database and stored users were created with. */}}
{{- define "synthdiv.keep" -}}
annotations:
  helm.sh/resource-policy: keep
{{- end -}}

{{- define "synthdiv.rayTokenSecret" -}}
{{- .Values.ray.auth.existingSecret | default (printf "%s-ray-token" (include "synthdiv.fullname" .)) -}}
{{- end -}}

{{- define "synthdiv.s3Endpoint" -}}
{{- if .Values.objectStore.inCluster.enabled -}}
{{- printf "http://%s-seaweedfs.%s.svc:8333" (include "synthdiv.fullname" .) .Release.Namespace -}}
{{- else -}}
{{- .Values.objectStore.endpoint -}}
{{- end -}}
{{- end -}}

{{- define "synthdiv.trackingUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s-mlflow.%s.svc:%d" (include "synthdiv.fullname" .) .Release.Namespace (int .Values.mlflow.service.port) -}}
{{- else -}}
{{- required "mlflow.externalTrackingUri is required when mlflow.enabled=false" .Values.mlflow.externalTrackingUri -}}
{{- end -}}
{{- end -}}

{{/* S3 credentials + endpoint as container env. (dict "ctx" $ "secret" name) */}}
{{- define "synthdiv.s3EnvFrom" -}}
{{- $ctx := .ctx -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ .secret }}, key: AWS_ACCESS_KEY_ID}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ .secret }}, key: AWS_SECRET_ACCESS_KEY}}
- name: AWS_DEFAULT_REGION
  value: {{ $ctx.Values.objectStore.region | quote }}
{{- with include "synthdiv.s3Endpoint" $ctx }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The admin S3 identity (MLflow server, bucket creation). */}}
{{- define "synthdiv.s3Env" -}}
{{ include "synthdiv.s3EnvFrom" (dict "ctx" . "secret" (include "synthdiv.s3Secret" .)) }}
{{- end -}}

{{/* Env of every Ray container: MLflow URI + the jobs' (non-admin) credentials, S3, offline hub. */}}
{{- define "synthdiv.rayEnv" -}}
- name: MLFLOW_TRACKING_URI
  value: {{ include "synthdiv.trackingUri" . | quote }}
{{- if .Values.mlflow.enabled }}
- name: MLFLOW_TRACKING_USERNAME
  valueFrom: {secretKeyRef: {name: {{ include "synthdiv.mlflowJobSecret" . }}, key: username}}
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "synthdiv.mlflowJobSecret" . }}, key: password}}
{{- end }}
{{ include "synthdiv.s3EnvFrom" (dict "ctx" . "secret" (include "synthdiv.s3JobSecret" .)) }}
- name: HF_HOME
  value: {{ printf "%s/hf" .Values.dataVolume.mountPath | quote }}
- name: HF_HUB_OFFLINE
  value: "1"
- name: HOME
  value: /tmp/home
{{- with .Values.ray.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes and mounts of every Ray pod. */}}
{{- define "synthdiv.rayVolumes" -}}
{{- $ctx := .ctx -}}
{{- with $ctx -}}
- name: tmp
  emptyDir: {sizeLimit: {{ .Values.tmpSizeLimit }}}
- name: dshm
  emptyDir: {medium: Memory, sizeLimit: {{ .Values.ray.shmSize }}}
{{- if .Values.dataVolume.enabled }}
- name: data
  persistentVolumeClaim:
    claimName: {{ .Values.dataVolume.existingClaim | default (printf "%s-data" (include "synthdiv.fullname" .)) }}
{{- end }}
{{- end }}
{{- if and (eq $.role "head") $ctx.Values.ray.autoscaling.enabled }}
{{- /* The pod mounts no token (automountServiceAccountToken: false); only the autoscaler
     container mounts this one (autoscalerOptions.volumeMounts), where client libraries look. */}}
- name: autoscaler-token
  projected:
    sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3600}
      - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
      - downwardAPI: {items: [{path: namespace, fieldRef: {fieldPath: metadata.namespace}}]}
{{- end }}
{{- end -}}

{{- define "synthdiv.rayVolumeMounts" -}}
- {name: tmp, mountPath: /tmp}
- {name: dshm, mountPath: /dev/shm}
{{- if .Values.dataVolume.enabled }}
- {name: data, mountPath: {{ .Values.dataVolume.mountPath }}}
{{- end }}
{{- end -}}

{{/* A Ray pod template. (dict "ctx" $ "role" "head"|"worker" "group" groupValues) */}}
{{- define "synthdiv.rayPodTemplate" -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
metadata:
  labels:
    {{- include "synthdiv.selectorLabels" (dict "ctx" $ctx "component" "ray") | nindent 4 }}
    {{- include "synthdiv.clientLabel" $ctx | nindent 4 }}
spec:
  serviceAccountName: {{ eq .role "head" | ternary (include "synthdiv.rayHeadSA" $ctx) (include "synthdiv.raySA" $ctx) }}
  automountServiceAccountToken: false
  securityContext:
    {{- include "synthdiv.podSecurityContext" $ctx | nindent 4 }}
  {{- with $v.ray.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .group.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .group.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: ray-{{ .role }}
      image: "{{ $v.ray.image.repository }}:{{ $v.ray.image.tag }}"
      imagePullPolicy: {{ $v.ray.image.pullPolicy }}
      securityContext:
        {{- include "synthdiv.containerSecurityContext" $ctx | nindent 8 }}
      env:
        {{- include "synthdiv.rayEnv" $ctx | nindent 8 }}
      {{- if eq .role "head" }}
      ports:
        - {name: gcs-server, containerPort: 6379}
        - {name: dashboard, containerPort: 8265}
        - {name: client, containerPort: 10001}
      {{- end }}
      {{- $res := deepCopy .group.resources }}
      {{- if gt (int (.group.gpus | default 0)) 0 }}
      {{- $gpu := dict (.group.gpuResource | default "nvidia.com/gpu") (int .group.gpus) }}
      {{- $_ := set $res "limits" (merge (deepCopy ($res.limits | default dict)) $gpu) }}
      {{- $_ := set $res "requests" (merge (deepCopy ($res.requests | default dict)) $gpu) }}
      {{- end }}
      resources:
        {{- toYaml $res | nindent 8 }}
      volumeMounts:
        {{- include "synthdiv.rayVolumeMounts" $ctx | nindent 8 }}
  volumes:
    {{- include "synthdiv.rayVolumes" (dict "ctx" $ctx "role" .role) | nindent 4 }}
{{- end -}}

{{/* A RayClusterSpec. (dict "ctx" $ "workerGroups" list) */}}
{{- define "synthdiv.rayClusterSpec" -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
rayVersion: {{ $v.ray.version | quote }}
{{- if $v.ray.auth.enabled }}
authOptions:
  mode: token
  secretName: {{ include "synthdiv.rayTokenSecret" $ctx }}
{{- end }}
enableInTreeAutoscaling: {{ $v.ray.autoscaling.enabled }}
{{- if $v.ray.autoscaling.enabled }}
autoscalerOptions:
  idleTimeoutSeconds: {{ $v.ray.autoscaling.idleTimeoutSeconds }}
  upscalingMode: {{ $v.ray.autoscaling.upscalingMode }}
  resources:
    requests: {cpu: 500m, memory: 512Mi}
    limits: {cpu: 500m, memory: 512Mi}
  securityContext:
    {{- include "synthdiv.containerSecurityContext" $ctx | nindent 4 }}
  volumeMounts:
    - {name: tmp, mountPath: /tmp}
    - {name: autoscaler-token, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}
{{- end }}
headGroupSpec:
  rayStartParams:
    {{- toYaml $v.ray.head.rayStartParams | nindent 4 }}
  template:
    {{- include "synthdiv.rayPodTemplate" (dict "ctx" $ctx "role" "head" "group" $v.ray.head) | nindent 4 }}
workerGroupSpecs:
{{- range .workerGroups }}
{{- if gt (int .minReplicas) (int .maxReplicas) }}
{{- fail (printf "ray worker group %q: minReplicas (%d) > maxReplicas (%d)" .name (int .minReplicas) (int .maxReplicas)) }}
{{- end }}
  - groupName: {{ .name }}
    replicas: {{ .replicas }}
    minReplicas: {{ .minReplicas }}
    maxReplicas: {{ .maxReplicas }}
    rayStartParams:
      {{- toYaml (.rayStartParams | default dict) | nindent 6 }}
    template:
      {{- include "synthdiv.rayPodTemplate" (dict "ctx" $ctx "role" "worker" "group" .) | nindent 6 }}
{{- end }}
{{- end -}}

{{/* MLFLOW_BACKEND_STORE_URI composed from the password Secret by Kubernetes' $(VAR) expansion. */}}
{{- define "synthdiv.mlflowDbEnv" -}}
- name: DB_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "synthdiv.postgresSecret" .ctx }}, key: {{ include "synthdiv.postgresPasswordKey" .ctx }}}}
- name: MLFLOW_BACKEND_STORE_URI
  value: {{ printf "postgresql://%s:$(DB_PASSWORD)@%s:%d/%s%s" .user .host (int .port) .name .query | quote }}
{{- end -}}

{{/* host list → "h,h:*,…" for mlflow --allowed-hosts (the Host header carries the port). */}}
{{- define "synthdiv.hostPatterns" -}}
{{- $out := list -}}
{{- range . }}{{ $out = append $out . }}{{ $out = append $out (printf "%s:*" .) }}{{ end -}}
{{- join "," $out -}}
{{- end -}}

{{/* Mount a stage's config ConfigMap at /etc/synthdiv in every Ray pod of a RayClusterSpec. */}}
{{- define "synthdiv.withConfigVolume" -}}
{{- $spec := .spec -}}
{{- $volume := dict "name" "synthdiv-config" "configMap" (dict "name" .configMap) -}}
{{- $mount := dict "name" "synthdiv-config" "mountPath" "/etc/synthdiv" "readOnly" true -}}
{{- $groups := concat (list $spec.headGroupSpec) ($spec.workerGroupSpecs | default list) -}}
{{- range $groups }}
{{- $pod := .template.spec -}}
{{- $_ := set $pod "volumes" (append $pod.volumes $volume) -}}
{{- range $pod.containers }}
{{- $_ := set . "volumeMounts" (append .volumeMounts $mount) -}}
{{- end }}
{{- end }}
{{- toYaml $spec -}}
{{- end -}}

{{/* Pod of KubeRay's submitter Job (K8sJobMode). KubeRay fills in the `ray job submit` command
     when the container has none; we add the client label (the dashboard NetworkPolicy admits
     it), the security contexts, and the Ray token. */}}
{{/* The command a stage's RayJob runs: the stage key is the `synthdiv` command's name. `run`
takes the study file as its argument, every other stage as --config (synthdiv/jobs.py derives the
same from the CLI; tests/deploy/test_stages.py checks each rendered entrypoint parses). */}}
{{- define "synthdiv.stageEntrypoint" -}}
{{- if eq . "run" -}}
synthdiv run /etc/synthdiv/config.yaml
{{- else -}}
synthdiv {{ . }} --config /etc/synthdiv/config.yaml
{{- end -}}
{{- end -}}

{{- define "synthdiv.submitterPodTemplate" -}}
metadata:
  labels:
    {{- include "synthdiv.clientLabel" . | nindent 4 }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "synthdiv.raySA" . }}
  automountServiceAccountToken: false
  securityContext:
    {{- include "synthdiv.podSecurityContext" . | nindent 4 }}
  {{- with .Values.ray.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: ray-job-submitter
      image: "{{ .Values.ray.image.repository }}:{{ .Values.ray.image.tag }}"
      imagePullPolicy: {{ .Values.ray.image.pullPolicy }}
      securityContext:
        {{- include "synthdiv.containerSecurityContext" . | nindent 8 }}
      env:
        - {name: HOME, value: /tmp/home}
        {{- if .Values.ray.auth.enabled }}
        - {name: RAY_AUTH_MODE, value: token}
        - name: RAY_AUTH_TOKEN
          valueFrom: {secretKeyRef: {name: {{ include "synthdiv.rayTokenSecret" . }}, key: auth_token}}
        {{- end }}
      resources:
        requests: {cpu: 200m, memory: 256Mi}
        limits: {cpu: "1", memory: 1Gi}
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: tmp
      emptyDir: {sizeLimit: 1Gi}
{{- end -}}
