{{/*
The wisegate container and its volumes, shared by the gateway Deployment and by your
own pods in sidecar mode:

  initContainers:
    {{- include "wisegate.sidecar" .Subcharts.wisegate | nindent 4 }}
  volumes:
    {{- include "wisegate.volumes" .Subcharts.wisegate | nindent 4 }}

Everything is mounted as a folder, never with subPath: Kubernetes updates ConfigMap and
Secret volumes by swapping a `..data` symlink, which reaches a running process only
through a folder mount. wisegate watches those folders, so a `helm upgrade` of the
config (rollback.all!) and a rotated certificate Secret take effect without a restart.
*/}}

{{/* The container, without restartPolicy (see "wisegate.sidecar"). */}}
{{- define "wisegate.container" -}}
{{- include "wisegate.validate" . -}}
{{- $secrets := include "wisegate.secretsDir" . -}}
- name: wisegate
  image: {{ include "wisegate.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - run
    - --config
    - {{ printf "%s/wisegate.toml" (include "wisegate.configDir" .) }}
  ports:
    - name: wisegate
      containerPort: {{ .Values.config.listen.port }}
      protocol: TCP
    - name: wisegate-admin
      containerPort: {{ .Values.config.admin.port }}
      protocol: TCP
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop:
        - ALL
    seccompProfile:
      type: RuntimeDefault
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .Values.probes.enabled }}
  # /healthz: the process is alive. Also the startup probe, so that in sidecar mode
  # the app's containers start once wisegate listens.
  startupProbe:
    httpGet:
      path: /healthz
      port: wisegate-admin
    periodSeconds: 1
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /healthz
      port: wisegate-admin
    periodSeconds: 10
    failureThreshold: 3
  # /readyz: 200 only when the config is loaded, the client certificate is valid and
  # each credential a route needs is usable; 503 at once on SIGTERM.
  readinessProbe:
    httpGet:
      path: /readyz
      port: wisegate-admin
    periodSeconds: 5
    failureThreshold: 2
  {{- end }}
  volumeMounts:
    - name: wisegate-config
      mountPath: {{ include "wisegate.configDir" . }}
      readOnly: true
    - name: wisegate-client-tls
      mountPath: {{ $secrets }}/tls
      readOnly: true
    - name: wisegate-client-secret
      mountPath: {{ $secrets }}/client-secret
      readOnly: true
    {{- if .Values.secrets.personalToken.name }}
    - name: wisegate-personal-token
      mountPath: {{ $secrets }}/personal-token
      readOnly: true
    {{- end }}
    {{- if .Values.secrets.refreshTokenSeed.name }}
    - name: wisegate-refresh-token
      mountPath: {{ $secrets }}/refresh-token
      readOnly: true
    {{- end }}
    {{- if and .Values.tokenStore.redis.url .Values.tokenStore.redis.passwordSecret.name }}
    - name: wisegate-redis-password
      mountPath: {{ $secrets }}/redis-password
      readOnly: true
    {{- end }}
    {{- if and .Values.tokenStore.redis.url .Values.tokenStore.redis.caConfigMap.name }}
    - name: wisegate-redis-ca
      mountPath: {{ $secrets }}/redis-ca
      readOnly: true
    {{- end }}
    {{- range .Values.accounts }}
    - name: {{ printf "wisegate-acct-%s-token" .name }}
      mountPath: {{ include "wisegate.accountSecretDir" (list $ . "personal-token") }}
      readOnly: true
    {{- if .scaKey }}
    - name: {{ printf "wisegate-acct-%s-sca" .name }}
      mountPath: {{ include "wisegate.accountSecretDir" (list $ . "sca-key") }}
      readOnly: true
    {{- end }}
    {{- end }}
    {{- if .Values.config.upstream.caConfigMap.name }}
    - name: wisegate-wise-ca
      mountPath: {{ $secrets }}/wise-ca
      readOnly: true
    {{- end }}
    # The token store (unless it is in Redis): the only thing wisegate writes.
    - name: wisegate-tokens
      mountPath: {{ include "wisegate.stateDir" . }}
{{- end -}}

{{/*
A Kubernetes native sidecar (1.29+): put it in your pod's initContainers. It starts
before the app's containers, runs as long as the pod, and stops after them.
*/}}
{{- define "wisegate.sidecar" -}}
{{- include "wisegate.container" . }}
  restartPolicy: Always
{{- end -}}

{{/* The pod volumes "wisegate.container" mounts. */}}
{{- define "wisegate.volumes" -}}
{{- $mode := int .Values.secrets.fileMode -}}
- name: wisegate-config
  configMap:
    name: {{ include "wisegate.fullname" . }}
- name: wisegate-client-tls
  secret:
    secretName: {{ .Values.secrets.clientCertificate }}
    defaultMode: {{ $mode }}
- name: wisegate-client-secret
  secret:
    secretName: {{ .Values.secrets.clientSecret.name }}
    defaultMode: {{ $mode }}
{{- with .Values.secrets.personalToken.name }}
- name: wisegate-personal-token
  secret:
    secretName: {{ . }}
    defaultMode: {{ $mode }}
{{- end }}
{{- with .Values.secrets.refreshTokenSeed.name }}
- name: wisegate-refresh-token
  secret:
    secretName: {{ . }}
    defaultMode: {{ $mode }}
{{- end }}
{{- if .Values.tokenStore.redis.url }}
{{- with .Values.tokenStore.redis.passwordSecret.name }}
- name: wisegate-redis-password
  secret:
    secretName: {{ . }}
    defaultMode: {{ $mode }}
{{- end }}
{{- with .Values.tokenStore.redis.caConfigMap.name }}
- name: wisegate-redis-ca
  configMap:
    name: {{ . }}
{{- end }}
{{- end }}
{{- with .Values.config.upstream.caConfigMap.name }}
- name: wisegate-wise-ca
  configMap:
    name: {{ . }}
{{- end }}
{{- range .Values.accounts }}
{{- $account := . }}
- name: {{ printf "wisegate-acct-%s-token" .name }}
  secret:
    secretName: {{ .personalToken.name }}
    defaultMode: {{ $mode }}
{{- with .scaKey }}
- name: {{ printf "wisegate-acct-%s-sca" $account.name }}
  secret:
    secretName: {{ .name }}
    defaultMode: {{ $mode }}
{{- end }}
{{- end }}
{{- $claim := include "wisegate.tokenClaim" . }}
- name: wisegate-tokens
{{- if $claim }}
  persistentVolumeClaim:
    claimName: {{ $claim }}
{{- else }}
  # Lost with the pod: set secrets.refreshTokenSeed to seed the store again on start.
  emptyDir:
    sizeLimit: 16Mi
{{- end }}
{{- end -}}
