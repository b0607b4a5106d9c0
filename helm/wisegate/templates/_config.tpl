{{/*
wisegate.toml, rendered from the values. Every path in it is an absolute mount path
made by "wisegate.volumeMounts"; keys are those of config.example.toml.
*/}}

{{- define "wisegate.configDir" -}}/etc/wisegate{{- end -}}
{{- define "wisegate.secretsDir" -}}/var/run/secrets/wisegate{{- end -}}
{{- define "wisegate.stateDir" -}}/var/lib/wisegate{{- end -}}

{{/* One TOML value: a bool, an integer (YAML numbers arrive as floats), a float, a string or a list. */}}
{{- define "wisegate.tomlValue" -}}
{{- if kindIs "bool" . -}}
{{- . -}}
{{- else if kindIs "float64" . -}}
{{- if eq (floor .) . -}}{{- int64 . -}}{{- else -}}{{- . -}}{{- end -}}
{{- else if or (kindIs "int" .) (kindIs "int64" .) -}}
{{- . -}}
{{- else if kindIs "slice" . -}}
[{{- range $i, $v := . -}}{{- if $i }}, {{ end -}}{{- include "wisegate.tomlValue" $v -}}{{- end -}}]
{{- else -}}
{{- toString . | toJson -}}
{{- end -}}
{{- end -}}

{{/*
A token store file on the token volume: (list root "name.json"). An emptyDir is
world-writable (0777): there the store sits in a folder wisegate makes 0700.
*/}}
{{- define "wisegate.fileStore" -}}
{{- $root := index . 0 -}}
{{- if include "wisegate.tokenClaim" $root -}}
{{- printf "%s/%s" (include "wisegate.stateDir" $root) (index . 1) -}}
{{- else -}}
{{- printf "%s/private/%s" (include "wisegate.stateDir" $root) (index . 1) -}}
{{- end -}}
{{- end -}}

{{/*
One account's token store: (list root account). Its own tokenStore, else the shared
Redis (wisegate gives each account its own key prefix), else tokens-<name>.json.
*/}}
{{- define "wisegate.accountStore" -}}
{{- $root := index . 0 -}}
{{- $account := index . 1 -}}
{{- if $account.tokenStore -}}
{{- $account.tokenStore -}}
{{- else if $root.Values.tokenStore.redis.url -}}
{{- $root.Values.tokenStore.redis.url -}}
{{- else -}}
{{- include "wisegate.fileStore" (list $root (printf "tokens-%s.json" $account.name)) -}}
{{- end -}}
{{- end -}}

{{/* Where one account's Secret is mounted: (list root account "personal-token"). */}}
{{- define "wisegate.accountSecretDir" -}}
{{- printf "%s/accounts/%s/%s" (include "wisegate.secretsDir" (index . 0)) (index . 1).name (index . 2) -}}
{{- end -}}

{{- define "wisegate.toml" -}}
{{- $secrets := include "wisegate.secretsDir" . -}}
{{- $gateway := eq .Values.mode "gateway" -}}
{{- $c := .Values.config -}}
# Rendered by the wisegate Helm chart (release {{ .Release.Name }}, mode {{ .Values.mode }}).
# Change the chart's values and `helm upgrade`: wisegate reloads this file when the
# ConfigMap changes, without a restart.
environment = {{ .Values.environment | toJson }}

[listen]
{{- if $gateway }}
address = {{ printf "0.0.0.0:%v" $c.listen.port | toJson }}
# Other pods reach the gateway through its Service.
allow_non_loopback = true
{{- else }}
address = {{ printf "127.0.0.1:%v" $c.listen.port | toJson }}
{{- end }}
shutdown_grace = {{ $c.listen.shutdownGrace | toString | toJson }}
{{- with $c.listen.threads }}
threads = {{ . }}
{{- end }}

[admin]
# On all addresses so that kubelet probes and Prometheus reach it.
address = {{ printf "0.0.0.0:%v" $c.admin.port | toJson }}
allow_non_loopback = true
{{- if or $c.upstream.mtlsUrl $c.upstream.legacyUrl $c.upstream.caConfigMap.name }}

[upstream]
{{- with $c.upstream.mtlsUrl }}
mtls_url = {{ . | toJson }}
{{- end }}
{{- with $c.upstream.legacyUrl }}
legacy_url = {{ . | toJson }}
{{- end }}
{{- if $c.upstream.caConfigMap.name }}
ca_file = {{ printf "%s/wise-ca/%s" $secrets $c.upstream.caConfigMap.key | toJson }}
{{- end }}
{{- end }}

[mtls]
cert_file = {{ printf "%s/tls/tls.crt" $secrets | toJson }}
key_file = {{ printf "%s/tls/tls.key" $secrets | toJson }}

[oauth]
client_id = {{ $c.oauth.clientId | toString | toJson }}
client_secret_file = {{ printf "%s/client-secret/%s" $secrets .Values.secrets.clientSecret.key | toJson }}
redirect_uri = {{ $c.oauth.redirectUri | toJson }}
{{- with .Values.tokenStore.redis }}
{{- if .url }}
{{- if not $.Values.accounts }}
# Shared by every pod of this client: one token lineage, refreshed once for all.
token_store = {{ .url | toJson }}
{{- end }}
{{- if .passwordSecret.name }}
redis_password_file = {{ printf "%s/redis-password/%s" $secrets .passwordSecret.key | toJson }}
{{- end }}
{{- with .keyPrefix }}
redis_key_prefix = {{ . | toJson }}
{{- end }}
{{- if .caConfigMap.name }}
redis_ca_file = {{ printf "%s/redis-ca/%s" $secrets .caConfigMap.key | toJson }}
{{- end }}
{{- else if not $.Values.accounts }}
{{- if not (include "wisegate.tokenClaim" $) }}
# An emptyDir is world-writable (0777): the store sits in a folder wisegate makes 0700.
{{- end }}
token_store = {{ include "wisegate.fileStore" (list $ "tokens.json") | toJson }}
{{- end }}
{{- end }}
{{- if .Values.secrets.refreshTokenSeed.name }}
refresh_token_file = {{ printf "%s/refresh-token/%s" $secrets .Values.secrets.refreshTokenSeed.key | toJson }}
{{- end }}
{{- with $c.oauth.tokenUrl }}
token_url = {{ . | toJson }}
{{- end }}
{{- with $c.oauth.authorizeUrl }}
authorize_url = {{ . | toJson }}
{{- end }}
{{- with $c.oauth.refreshBefore }}
refresh_before = {{ . | toString | toJson }}
{{- end }}
{{- if .Values.secrets.personalToken.name }}

[personal_token]
token_file = {{ printf "%s/personal-token/%s" $secrets .Values.secrets.personalToken.key | toJson }}
{{- end }}
{{- if $c.limits }}

[limits]
{{- range $key, $value := $c.limits }}
{{- if not (regexMatch "^[a-z_]+$" $key) }}
{{- fail (printf "config.limits.%s: not a key of [limits] (see config.example.toml)" $key) }}
{{- end }}
{{ $key }} = {{ include "wisegate.tomlValue" $value }}
{{- end }}
{{- end }}

[log]
format = {{ $c.log.format | toJson }}
level = {{ $c.log.level | toJson }}

[rollback]
all = {{ .Values.rollback.all | default false }}
{{- range .Values.accounts }}
{{- $account := . }}

[[account]]
name = {{ .name | toJson }}
app_token_sha256 = [
{{- range .appTokenSha256 }}
  {{ . | toJson }},
{{- end }}
]
token_store = {{ include "wisegate.accountStore" (list $ .) | toJson }}
personal_token_file = {{ printf "%s/%s" (include "wisegate.accountSecretDir" (list $ . "personal-token")) (.personalToken.key | default "personal_token") | toJson }}
{{- with .scaKey }}
sca_key_file = {{ printf "%s/%s" (include "wisegate.accountSecretDir" (list $ $account "sca-key")) (.key | default "sca.key") | toJson }}
{{- end }}
{{- if hasKey . "rollback" }}
rollback = {{ .rollback }}
{{- end }}
{{- end }}
{{- range $index, $route := $c.routes }}

[[route]]
{{- range $key := list "name" "path" "methods" "mode" "shadow" "fallback" }}
{{- if hasKey $route $key }}
{{ $key }} = {{ include "wisegate.tomlValue" (get $route $key) }}
{{- end }}
{{- end }}
{{- range $key, $_ := $route }}
{{- if not (has $key (list "name" "path" "methods" "mode" "shadow" "fallback")) }}
{{- fail (printf "config.routes[%d].%s: a route has name, path, methods, mode, shadow and fallback" $index $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
