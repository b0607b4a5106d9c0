{{/*
Names, labels, derived numbers and the checks that stop a bad release before it
renders. Every template here takes the chart's root context: in your own chart, pass
`.Subcharts.wisegate`.
*/}}

{{- define "wisegate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wisegate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "wisegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wisegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wisegate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "wisegate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "wisegate.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The token store's claim name, or nothing for an emptyDir. */}}
{{- define "wisegate.tokenClaim" -}}
{{- $pvc := .Values.tokenStore.persistentVolumeClaim -}}
{{- if $pvc.existingClaim -}}
{{- $pvc.existingClaim -}}
{{- else if $pvc.enabled -}}
{{- printf "%s-tokens" (include "wisegate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* config.listen.shutdownGrace in whole seconds, rounded up ("500ms", "30s", "2m", "1h"). */}}
{{- define "wisegate.graceSeconds" -}}
{{- $grace := toString .Values.config.listen.shutdownGrace -}}
{{- if regexMatch "^[0-9]+ms$" $grace -}}
{{- div (add (trimSuffix "ms" $grace | atoi) 999) 1000 -}}
{{- else if regexMatch "^[0-9]+s$" $grace -}}
{{- trimSuffix "s" $grace | atoi -}}
{{- else if regexMatch "^[0-9]+m$" $grace -}}
{{- mul (trimSuffix "m" $grace | atoi) 60 -}}
{{- else if regexMatch "^[0-9]+h$" $grace -}}
{{- mul (trimSuffix "h" $grace | atoi) 3600 -}}
{{- else -}}
{{- fail (printf "config.listen.shutdownGrace %q: write a whole number followed by ms, s, m or h, e.g. 30s" $grace) -}}
{{- end -}}
{{- end -}}

{{/* The pod's grace period: longer than wisegate's own drain, so SIGKILL never cuts it short. */}}
{{- define "wisegate.terminationGracePeriodSeconds" -}}
{{- $grace := include "wisegate.graceSeconds" . | atoi -}}
{{- $pod := .Values.terminationGracePeriodSeconds -}}
{{- if eq (toString $pod) "" -}}
{{- add $grace 15 -}}
{{- else if le (int $pod) $grace -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed config.listen.shutdownGrace (%ds), or Kubernetes kills wisegate while requests are still draining" $pod $grace) -}}
{{- else -}}
{{- int $pod -}}
{{- end -}}
{{- end -}}

{{/* Refuses values that would render a release wisegate cannot run. Renders nothing. */}}
{{- define "wisegate.validate" -}}
{{- if not (has .Values.mode (list "sidecar" "gateway")) -}}
{{- fail (printf "mode %q: use \"sidecar\" or \"gateway\"" (toString .Values.mode)) -}}
{{- end -}}
{{- if not (has .Values.environment (list "sandbox" "production")) -}}
{{- fail (printf "environment %q: use \"sandbox\" or \"production\"" (toString .Values.environment)) -}}
{{- end -}}
{{- $redis := .Values.tokenStore.redis -}}
{{- if and (eq .Values.mode "gateway") (gt (int .Values.replicas) 1) (not $redis.url) -}}
{{- fail (printf "replicas: %v: gateway replicas would each refresh the same OAuth token lineage and invalidate each other's access tokens. Several replicas need the shared Redis token store: set tokenStore.redis.url (and tokenStore.redis.passwordSecret), or keep replicas: 1" .Values.replicas) -}}
{{- end -}}
{{- if $redis.url -}}
{{- if not (regexMatch "^rediss?://[^/?#]+" $redis.url) -}}
{{- if not (regexMatch "^rediss?\\+sentinel://[^/?#]+/[A-Za-z0-9._-]+(/[0-9]+)?$" $redis.url) -}}
{{- fail "tokenStore.redis.url: write redis://host:port/db or rediss://host:port/db, or for Sentinel redis+sentinel://sentinel-0:26379,sentinel-1:26379/master-name/db (rediss+sentinel:// for TLS)" -}}
{{- end -}}
{{- end -}}
{{- if regexMatch "^rediss?(\\+sentinel)?://[^@/]*:[^@/]*@" $redis.url -}}
{{- fail "tokenStore.redis.url carries a password, which would sit in the ConfigMap: put it in a Secret and name it in tokenStore.redis.passwordSecret" -}}
{{- end -}}
{{- if and $redis.caConfigMap.name (not (or (hasPrefix "rediss://" $redis.url) (hasPrefix "rediss+sentinel://" $redis.url))) -}}
{{- fail "tokenStore.redis.caConfigMap only applies to a rediss:// or rediss+sentinel:// (TLS) tokenStore.redis.url" -}}
{{- end -}}
{{- if .Values.tokenStore.persistentVolumeClaim.enabled -}}
{{- fail "tokenStore.redis.url and tokenStore.persistentVolumeClaim.enabled: the tokens live in Redis, the volume would be unused; disable the claim" -}}
{{- end -}}
{{- end -}}
{{- if not (or $redis.url (include "wisegate.tokenClaim" .) .Values.secrets.refreshTokenSeed.name .Values.tokenStore.ephemeral) -}}
{{- fail "tokenStore: the tokens would sit in an emptyDir, lost whenever the pod is replaced (a `wisegate authorize` run in the pod is gone after the next `kubectl rollout restart`). Set one of: tokenStore.persistentVolumeClaim.enabled=true (or tokenStore.persistentVolumeClaim.existingClaim), tokenStore.redis.url, or secrets.refreshTokenSeed.name (a Secret holding a refresh token from `wisegate authorize`); or tokenStore.ephemeral=true to accept losing the tokens with the pod" -}}
{{- end -}}
{{- if and (eq .Values.mode "gateway") .Values.networkPolicy.enabled (not .Values.networkPolicy.from) -}}
{{- fail "networkPolicy.from is empty: the gateway's NetworkPolicy would let nobody reach the proxy port. List the pods that may send Wise calls through it (whatever reaches it spends your Wise credentials), e.g. --set-json 'networkPolicy.from=[{\"podSelector\":{\"matchLabels\":{\"app\":\"payments\"}}}]', or set networkPolicy.enabled=false to let every pod in the cluster in" -}}
{{- end -}}
{{- if not .Values.config.oauth.clientId -}}
{{- fail "config.oauth.clientId is required: the client id Wise gave you" -}}
{{- end -}}
{{- if not .Values.config.oauth.redirectUri -}}
{{- fail "config.oauth.redirectUri is required: the redirect URL registered with Wise, exactly as registered" -}}
{{- end -}}
{{- if not .Values.secrets.clientCertificate -}}
{{- fail "secrets.clientCertificate is required: a kubernetes.io/tls Secret with the certificate Wise issued (tls.crt) and its key (tls.key)" -}}
{{- end -}}
{{- if not .Values.secrets.clientSecret.name -}}
{{- fail "secrets.clientSecret.name is required: a Secret holding the OAuth client secret" -}}
{{- end -}}
{{- include "wisegate.validateAccounts" . -}}
{{- $personal := false -}}
{{- range .Values.config.routes -}}
{{- if eq (toString .mode) "personal_token" -}}{{- $personal = true -}}{{- end -}}
{{- end -}}
{{- if and (or .Values.rollback.all $personal) (not .Values.secrets.personalToken.name) (not .Values.accounts) -}}
{{- fail "rollback.all and personal_token routes send the personal token: set secrets.personalToken.name (a Secret holding it), or wisegate would refuse the config" -}}
{{- end -}}
{{- $_ := include "wisegate.terminationGracePeriodSeconds" . -}}
{{- end -}}


{{/* Refuses accounts wisegate would refuse, all problems at once. Renders nothing. */}}
{{- define "wisegate.validateAccounts" -}}
{{- $problems := list -}}
{{- if .Values.accounts -}}
{{- if .Values.secrets.personalToken.name -}}
{{- $problems = append $problems "secrets.personalToken.name is the single account's personal token: with accounts, each account names its own Secret in accounts[].personalToken; leave secrets.personalToken.name empty" -}}
{{- end -}}
{{- if .Values.secrets.refreshTokenSeed.name -}}
{{- $problems = append $problems "secrets.refreshTokenSeed.name seeds the single account's token store: with accounts, keep the tokens in tokenStore.persistentVolumeClaim or tokenStore.redis and run `wisegate authorize --account NAME` for each; leave secrets.refreshTokenSeed.name empty" -}}
{{- end -}}
{{- end -}}
{{- $names := list -}}
{{- $hashes := dict -}}
{{- range $index, $account := .Values.accounts -}}
{{- if has $account.name $names -}}
{{- $problems = append $problems (printf "accounts[%d].name %q: another account has that name; names must be unique" $index $account.name) -}}
{{- end -}}
{{- $names = append $names $account.name -}}
{{- range $account.appTokenSha256 -}}
{{- if hasKey $hashes . -}}
{{- $problems = append $problems (printf "accounts[%d] (%s): an appTokenSha256 hash is also in account %s; one app token must select one account" $index $account.name (get $hashes .)) -}}
{{- else -}}
{{- $_ := set $hashes . $account.name -}}
{{- end -}}
{{- end -}}
{{- if regexMatch "^rediss?(\\+sentinel)?://[^@/]*:[^@/]*@" ($account.tokenStore | default "") -}}
{{- $problems = append $problems (printf "accounts[%d].tokenStore carries a password, which would sit in the ConfigMap: put it in the Secret tokenStore.redis.passwordSecret names" $index) -}}
{{- end -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "accounts: %s" (join "; " $problems)) -}}
{{- end -}}
{{- end -}}
