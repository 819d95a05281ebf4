{{/* Names ------------------------------------------------------------------------------ */}}
{{- define "falconet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "falconet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>", for (dict "root" $ "component" "worker") */}}
{{- define "falconet.componentName" -}}
{{- printf "%s-%s" (include "falconet.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels ----------------------------------------------------------------------------- */}}
{{- define "falconet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "falconet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: falconet
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "falconet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "falconet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image ------------------------------------------------------------------------------ */}}
{{- define "falconet.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* Checks that span several values ---------------------------------------------------- */}}
{{- define "falconet.validate" -}}
{{- if not .Values.kafka.bootstrap -}}
{{- fail "kafka.bootstrap is required: --set kafka.bootstrap=host:port[,host:port] (an existing Kafka cluster)" -}}
{{- end -}}
{{- if and .Values.kafka.tls.enabled (not .Values.kafka.tls.existingSecret) -}}
{{- fail "kafka.tls.enabled needs kafka.tls.existingSecret (a Secret with the CA bundle)" -}}
{{- end -}}
{{- if and .Values.kafka.tls.certKey (not .Values.kafka.tls.keyKey) -}}
{{- fail "kafka.tls.certKey needs kafka.tls.keyKey (the client certificate's private key)" -}}
{{- end -}}
{{- if and .Values.kafka.sasl.enabled (not .Values.kafka.sasl.existingSecret) -}}
{{- fail "kafka.sasl.enabled needs kafka.sasl.existingSecret (a Secret with the user name and password)" -}}
{{- end -}}
{{- if .Values.k8sAudit.enabled -}}
{{- if and (not .Values.k8sAudit.insecureHttp) (not .Values.k8sAudit.tls.existingSecret) -}}
{{- fail "k8sAudit.enabled needs k8sAudit.tls.existingSecret (the webhook's server certificate; cert-manager can make it)" -}}
{{- end -}}
{{- if and (not .Values.k8sAudit.clientCA.existingSecret) (not .Values.k8sAudit.token.existingSecret) (not .Values.k8sAudit.insecureHttp) -}}
{{- fail "k8sAudit.enabled needs k8sAudit.clientCA.existingSecret and/or k8sAudit.token.existingSecret: the webhook authenticates the API server" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.cloudtrail.enabled (not .Values.cloudtrail.sqsQueueUrl) (not .Values.cloudtrail.bucket) -}}
{{- fail "cloudtrail.enabled needs cloudtrail.sqsQueueUrl or cloudtrail.bucket" -}}
{{- end -}}
{{- if and .Values.cloudMeta.enabled (not .Values.cloudMeta.accounts) (not .Values.cloudMeta.identities) -}}
{{- fail "cloudMeta.enabled needs cloudMeta.accounts and/or cloudMeta.identities" -}}
{{- end -}}
{{- $as := .Values.worker.autoscaling -}}
{{- if and .Values.worker.enabled $as.enabled (not $as.cpu.enabled) (not $as.lag.enabled) -}}
{{- fail "worker.autoscaling.enabled needs worker.autoscaling.cpu.enabled and/or worker.autoscaling.lag.enabled" -}}
{{- end -}}
{{- if and .Values.rules.pusher.enabled (not .Values.rules.bundled) (not .Values.rules.falco.enabled) (not .Values.rules.existingConfigMaps) (not .Values.rules.files) -}}
{{- fail "rules.pusher.enabled needs rules to push: rules.bundled, rules.falco, rules.existingConfigMaps or rules.files" -}}
{{- end -}}
{{- range .Values.sink.sinks -}}
{{- range $setting, $ref := (default dict .credentials) -}}
{{- if and (kindIs "string" $ref) (not $.Values.sink.existingSecret) (not (hasKey $.Values.sink.secretValues $ref)) -}}
{{- fail (printf "sink credentials %s: key %q is neither in sink.secretValues nor backed by sink.existingSecret" $setting $ref) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Kafka: the environment every falconet process needs ------------------------------- */}}
{{- define "falconet.securityProtocol" -}}
{{- $k := .Values.kafka -}}
{{- if $k.securityProtocol -}}{{ $k.securityProtocol }}
{{- else if and $k.tls.enabled $k.sasl.enabled -}}SASL_SSL
{{- else if $k.sasl.enabled -}}SASL_PLAINTEXT
{{- else if $k.tls.enabled -}}SSL
{{- else -}}PLAINTEXT
{{- end -}}
{{- end -}}

{{- define "falconet.kafkaEnv" -}}
{{- $k := .Values.kafka -}}
- name: FALCONET_KAFKA_BOOTSTRAP
  value: {{ $k.bootstrap | quote }}
- name: FALCONET_KAFKA_TOPIC_PREFIX
  value: {{ $k.topicPrefix | quote }}
- name: FALCONET_KAFKA_SECURITY_PROTOCOL
  value: {{ include "falconet.securityProtocol" . | quote }}
{{- if $k.tls.enabled }}
- name: FALCONET_KAFKA_SSL_CA_FILE
  value: /etc/falconet/kafka-tls/{{ $k.tls.caKey }}
{{- if $k.tls.certKey }}
- name: FALCONET_KAFKA_SSL_CERT_FILE
  value: /etc/falconet/kafka-tls/{{ $k.tls.certKey }}
- name: FALCONET_KAFKA_SSL_KEY_FILE
  value: /etc/falconet/kafka-tls/{{ $k.tls.keyKey }}
{{- end }}
- name: FALCONET_KAFKA_SSL_VERIFY_HOSTNAME
  value: {{ $k.tls.verifyHostname | quote }}
{{- end }}
{{- if $k.sasl.enabled }}
- name: FALCONET_KAFKA_SASL_MECHANISM
  value: {{ $k.sasl.mechanism | quote }}
- name: FALCONET_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret }}
      key: {{ $k.sasl.usernameKey }}
- name: FALCONET_KAFKA_SASL_PASSWORD_FILE
  value: /etc/falconet/kafka-sasl/{{ $k.sasl.passwordKey }}
{{- if $k.sasl.oauthTokenEndpoint }}
- name: FALCONET_KAFKA_OAUTH_TOKEN_ENDPOINT
  value: {{ $k.sasl.oauthTokenEndpoint | quote }}
{{- end }}
{{- end }}
- name: FALCONET_TOPICS_PARTITIONS
  value: {{ $k.topics.partitions | quote }}
- name: FALCONET_TOPICS_META_PARTITIONS
  value: {{ $k.topics.metaPartitions | quote }}
- name: FALCONET_TOPICS_REPLICATION
  value: {{ $k.topics.replication | quote }}
- name: FALCONET_TOPICS_RETENTION_MS
  value: {{ $k.topics.retentionMs | int64 | quote }}
- name: HOME
  value: /tmp
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The shared config file, plus Kafka; (dict "root" $ "config" "/etc/falconet/config/falconet.yaml") */}}
{{- define "falconet.env" -}}
- name: FALCONET_CONFIG
  value: {{ default "/etc/falconet/config/falconet.yaml" .config }}
{{ include "falconet.kafkaEnv" .root }}
{{- end -}}

{{- define "falconet.kafkaVolumeMounts" -}}
{{- if .Values.kafka.tls.enabled }}
- name: kafka-tls
  mountPath: /etc/falconet/kafka-tls
  readOnly: true
{{- end }}
{{- if .Values.kafka.sasl.enabled }}
- name: kafka-sasl
  mountPath: /etc/falconet/kafka-sasl
  readOnly: true
{{- end }}
{{- end -}}

{{- define "falconet.kafkaVolumes" -}}
{{- $k := .Values.kafka -}}
{{- if $k.tls.enabled }}
- name: kafka-tls
  secret:
    secretName: {{ $k.tls.existingSecret }}
    defaultMode: 0440
    items:
      - {key: {{ $k.tls.caKey }}, path: {{ $k.tls.caKey }}}
      {{- if $k.tls.certKey }}
      - {key: {{ $k.tls.certKey }}, path: {{ $k.tls.certKey }}}
      - {key: {{ $k.tls.keyKey }}, path: {{ $k.tls.keyKey }}}
      {{- end }}
{{- end }}
{{- if $k.sasl.enabled }}
- name: kafka-sasl
  secret:
    secretName: {{ $k.sasl.existingSecret }}
    defaultMode: 0440
    items:
      - {key: {{ $k.sasl.passwordKey }}, path: {{ $k.sasl.passwordKey }}}
{{- end }}
{{- end -}}

{{/* The volumes and mounts of an ordinary falconet container: config file, /tmp, Kafka. */}}
{{- define "falconet.volumeMounts" -}}
- name: config
  mountPath: /etc/falconet/config
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- include "falconet.kafkaVolumeMounts" . }}
{{- end -}}

{{- define "falconet.volumes" -}}
- name: config
  configMap:
    name: {{ include "falconet.fullname" . }}-config
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- include "falconet.kafkaVolumes" . }}
{{- end -}}

{{/* Pod-level pieces every Deployment shares ------------------------------------------- */}}
{{- define "falconet.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "falconet.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end -}}

{{- define "falconet.podAnnotations" -}}
checksum/config: {{ include "falconet.configFile" .root | sha256sum }}
{{- with .root.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The falconet config file (no secrets) */}}
{{- define "falconet.configFile" -}}
{{- if .Values.config -}}
{{ toYaml .Values.config }}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/* A metrics port, its probes */}}
{{- define "falconet.metricsProbes" -}}
readinessProbe:
  httpGet: {path: /metrics, port: metrics}
  periodSeconds: 10
  failureThreshold: 3
livenessProbe:
  httpGet: {path: /metrics, port: metrics}
  initialDelaySeconds: 30
  periodSeconds: 20
  failureThreshold: 6
{{- end -}}

{{/* ServiceAccount: (dict "root" $ "component" "worker" "values" .Values.worker "automount" false) */}}
{{- define "falconet.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "falconet.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "falconet.labels" . | nindent 4 }}
  {{- with .values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ .automount | default false }}
{{- end -}}

{{/* The upper-case form of a sink name in its environment variables */}}
{{- define "falconet.sinkEnvName" -}}
{{- printf "FALCONET_SINK_%s_%s" (.sink | upper | replace "-" "_") (.setting | upper | replace "-" "_") -}}
{{- end -}}

{{/* The sink's config file: the shared settings plus the sinks list without `credentials` */}}
{{- define "falconet.sinkConfigFile" -}}
{{- $sinks := list -}}
{{- range .Values.sink.sinks -}}
{{- $sinks = append $sinks (omit . "credentials") -}}
{{- end -}}
{{ toYaml (merge (dict "sinks" $sinks) (deepCopy .Values.config)) }}
{{- end -}}

{{/* Rules: the folders the rules ConfigMaps are mounted at, in load order ------------- */}}
{{- define "falconet.ruleSources" -}}
{{- $r := .Values.rules -}}
{{- $out := list -}}
{{- if $r.falco.enabled -}}{{- $out = append $out (dict "name" "rules-falco" "configMap" $r.falco.configMap "dir" "10-falco") -}}{{- end -}}
{{- range $i, $cm := $r.existingConfigMaps -}}{{- $out = append $out (dict "name" (printf "rules-extra-%d" $i) "configMap" $cm "dir" (printf "%d-%s" (add 20 $i) $cm)) -}}{{- end -}}
{{- if $r.files -}}{{- $out = append $out (dict "name" "rules-files" "configMap" (printf "%s-rules" (include "falconet.fullname" .)) "dir" "90-custom") -}}{{- end -}}
{{ toYaml $out }}
{{- end -}}

{{- define "falconet.rulePaths" -}}
{{- $paths := list -}}
{{- if .Values.rules.bundled -}}{{- $paths = append $paths .Values.rules.bundledPath -}}{{- end -}}
{{- range (include "falconet.ruleSources" . | fromYamlArray) -}}{{- $paths = append $paths (printf "/etc/falconet/rules/%s" .dir) -}}{{- end -}}
{{ toYaml $paths }}
{{- end -}}

{{- define "falconet.rulesVolumeMounts" -}}
{{- range (include "falconet.ruleSources" . | fromYamlArray) }}
- name: {{ .name }}
  mountPath: /etc/falconet/rules/{{ .dir }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "falconet.rulesVolumes" -}}
{{- range (include "falconet.ruleSources" . | fromYamlArray) }}
- name: {{ .name }}
  configMap:
    name: {{ .configMap }}
{{- end }}
{{- end -}}

{{/* The components that run, with their metrics ports and what they reach (NetworkPolicy) */}}
{{- define "falconet.components" -}}
{{- $v := .Values -}}
{{- $out := list -}}
{{- $na := $v.nodeAgent -}}
{{- if and $na.enabled (or $na.syscall.enabled $na.runtimeMeta.enabled $na.cloudMeta.enabled) -}}
{{- $ports := list -}}
{{- if $na.syscall.enabled }}{{ $ports = append $ports (dict "name" "metrics" "port" $na.syscall.metricsPort) }}{{ end -}}
{{- if $na.runtimeMeta.enabled }}{{ $ports = append $ports (dict "name" "runtime-metrics" "port" $na.runtimeMeta.metricsPort) }}{{ end -}}
{{- if $na.cloudMeta.enabled }}{{ $ports = append $ports (dict "name" "cloud-metrics" "port" $na.cloudMeta.metricsPort) }}{{ end -}}
{{- $out = append $out (dict "component" "node-agent" "metrics" $ports "imds" $na.cloudMeta.enabled) -}}
{{- end -}}
{{- if $v.worker.enabled -}}
{{- $out = append $out (dict "component" "worker" "metrics" (list (dict "name" "metrics" "port" $v.worker.metricsPort))) -}}
{{- end -}}
{{- if and $v.sink.enabled $v.sink.sinks -}}
{{- $out = append $out (dict "component" "sink" "metrics" (list (dict "name" "metrics" "port" $v.sink.metricsPort)) "egressPorts" $v.sink.egressPorts "anyEgress" (not $v.sink.egressPorts)) -}}
{{- end -}}
{{- if $v.cloudtrail.enabled -}}
{{- $out = append $out (dict "component" "cloudtrail" "metrics" (list (dict "name" "metrics" "port" $v.cloudtrail.metricsPort)) "egressPorts" (list 443)) -}}
{{- end -}}
{{- if $v.k8sAudit.enabled -}}
{{- $out = append $out (dict "component" "k8s-audit" "metrics" (list (dict "name" "metrics" "port" $v.k8sAudit.metricsPort)) "webhookPort" $v.k8sAudit.port) -}}
{{- end -}}
{{- if $v.k8sMeta.enabled -}}
{{- $out = append $out (dict "component" "k8s-meta" "metrics" (list (dict "name" "metrics" "port" $v.k8sMeta.metricsPort)) "egressPorts" $v.networkPolicy.apiServerPorts) -}}
{{- end -}}
{{- if $v.cloudMeta.enabled -}}
{{- $out = append $out (dict "component" "cloud-meta" "metrics" (list (dict "name" "metrics" "port" $v.cloudMeta.metricsPort)) "egressPorts" (list 443)) -}}
{{- end -}}
{{- if $v.rules.pusher.enabled -}}
{{- $out = append $out (dict "component" "rules-pusher" "metrics" (list)) -}}
{{- end -}}
{{- if $v.kafka.topics.create -}}
{{- $out = append $out (dict "component" "topics" "metrics" (list)) -}}
{{- end -}}
{{ toYaml $out }}
{{- end -}}
