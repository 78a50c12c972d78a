#!/usr/bin/env bash
# Offline checks of deploy/ (no cluster, no helm binary: Debian ships neither helm nor
# kubeconform). What is checked, exactly:
#  - every plain manifest in deploy/kubernetes/ against the Kubernetes OpenAPI schemas bundled
#    in kubernetes-validate (pip), strictly (unknown fields are errors), for the oldest and the
#    newest Kubernetes this targets; a manifest with a misspelt field must fail, so the check bites;
#  - the alert rules with promtool (Debian's prometheus);
#  - the chart's values.yaml against its values.schema.json (what helm itself checks at install),
#    and a values file with an unknown key must fail;
#  - every .Values path a chart template names exists in values.yaml.
# Not checked: the chart's rendered output (rendering needs helm), and the ServiceMonitor's and
# PrometheusRule's fields (no schema for the prometheus-operator CRDs is bundled).
#   Tests/EndToEnd/deploy-check.sh
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib/e2e.sh"
e2e_begin deploy-check -

python3 -c "import kubernetes_validate" 2>/dev/null || { echo "missing kubernetes-validate (scripts/setup.sh installs it with pip)"; exit 2; }
command -v promtool >/dev/null || { echo "missing promtool (scripts/setup.sh installs prometheus)"; exit 2; }

MANIFESTS=()
for file in "$ROOT"/deploy/kubernetes/*.yaml; do
    case $(basename "$file") in alerts.yaml | servicemonitor.yaml) ;; *) MANIFESTS+=("$file") ;; esac
done
for version in 1.29.0 1.33.0; do
    out=$(python3 -m kubernetes_validate --strict --quiet -k "$version" "${MANIFESTS[@]}" 2>&1) \
        && pass "${#MANIFESTS[@]} plain manifests validate strictly against Kubernetes $version's schemas" \
        || fail "kubernetes-validate $version" "$out"
done
sed 's/readinessProbe:/readinesProbe:/' "$ROOT/deploy/kubernetes/deployment.yaml" >"$WORK/broken.yaml"
out=$(python3 -m kubernetes_validate --strict --quiet -k 1.33.0 "$WORK/broken.yaml" 2>&1) \
    && fail "a misspelt field passed the schema check" "$out" || pass "a misspelt field fails the schema check (it bites)"

out=$(promtool check rules "$ROOT/deploy/kubernetes/alerts.yaml" 2>&1) && pass "promtool check rules alerts.yaml" || fail "promtool check rules" "$out"

CHART=$ROOT/deploy/helm/tunnel
out=$(python3 - "$CHART" <<'PY' 2>&1
import json, re, sys, pathlib, yaml, jsonschema
chart = pathlib.Path(sys.argv[1])
meta = yaml.safe_load((chart / "Chart.yaml").read_text())
assert meta["apiVersion"] == "v2" and meta["name"] and meta["version"], "Chart.yaml lacks apiVersion v2, name or version"
values = yaml.safe_load((chart / "values.yaml").read_text())
schema = json.loads((chart / "values.schema.json").read_text())
jsonschema.validate(values, schema)
try:
    jsonschema.validate({**values, "replica": 3}, schema)
    sys.exit("a values file with an unknown key passed values.schema.json")
except jsonschema.ValidationError:
    pass
missing = []
for template in sorted((chart / "templates").glob("*")):
    for path in re.findall(r"\.Values((?:\.\w+)+)", template.read_text()):
        node = values
        for key in path.strip(".").split("."):
            if not isinstance(node, dict) or key not in node:
                missing.append(f"{template.name}: .Values{path}")
                break
            node = node[key]
assert not missing, "templates name values that values.yaml lacks: " + ", ".join(missing)
print("Chart.yaml, values.yaml against values.schema.json (an unknown key fails), every .Values path in the templates exists")
PY
) && pass "chart: $out" || fail "chart checks" "$out"
