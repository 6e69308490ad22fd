"""Offline checks of the deployment artefacts: k8s/ (kustomize base and dev overlay), the
compose file and the Dockerfiles. No container engine or API server is needed (or used):
manifests are validated against the Kubernetes 1.30 OpenAPI schemas bundled in
kubernetes-validate (strict: unknown fields are errors), docker-compose.yml against the Compose
specification JSON schema in tests/data/compose-spec.json. scripts/compose_test.py (`make
compose-test`) runs the images and the compose cluster for real."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")
jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
K8S_VERSION = "1.30"
NAMESPACE = "noosphere"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
#: The healthcheck of node images and services: GET /healthz with busybox wget (no Python).
HEALTHZ = ["busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:7070/healthz"]


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def render(target: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomizations offline")
    result = subprocess.run(
        [kubectl, "kustomize", str(target)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(K8S / "base")


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in WORKLOAD_KINDS
    ]


def validate(doc: dict[str, Any], where: str) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.path)
        pytest.fail(f"{where}: {doc['kind']}/{doc['metadata'].get('name')}: {path}: {exc.message}")


# ---- Kubernetes: schemas ----------------------------------------------------------------------


def test_there_are_manifests_and_an_overlay() -> None:
    assert (K8S / "base" / "kustomization.yaml").is_file()
    assert K8S / "overlays" / "dev" in OVERLAYS
    assert len(MANIFESTS) >= 8


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
def test_each_manifest_file_is_valid_kubernetes(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} holds no document"
    for doc in docs:
        if doc.get("kind") == "Kustomization":
            continue
        if "overlays" in path.parts:
            # a patch is a partial object: check it names an object of the base
            assert doc["metadata"]["name"], path
            continue
        validate(doc, str(path.relative_to(ROOT)))


@pytest.mark.parametrize("target", [K8S / "base", *OVERLAYS], ids=lambda p: p.name)
def test_rendered_kustomization_is_valid_kubernetes(target: Path) -> None:
    docs = render(target)
    for doc in docs:
        validate(doc, f"kubectl kustomize {target.relative_to(ROOT)}")
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "ConfigMap",
        "StatefulSet",
        "Deployment",
        "Service",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "PodDisruptionBudget",
        "NetworkPolicy",
    } <= kinds


def test_dev_overlay_changes_what_it_says(base: list[dict[str, Any]]) -> None:
    dev = render(K8S / "overlays" / "dev")
    # the orchestrator owns the worker count: no manifest sets it (a re-apply would reset it)
    assert "replicas" not in by_kind(dev, "Deployment")["worker"]["spec"]
    assert "replicas" not in by_kind(base, "Deployment")["worker"]["spec"]
    assert by_kind(dev, "ConfigMap")["noosphere-config"]["data"]["NOOSPHERE_LOG_LEVEL"] == "debug"
    # a dev chain: anvil behind Service chain:8545, state on a PVC, not a noosphere node
    chain = by_kind(dev, "Deployment")["chain"]
    (anvil,) = chain["spec"]["template"]["spec"]["containers"]
    assert anvil["image"] == "noosphere-anvil:dev" and "--state" in anvil["args"]
    assert [p["port"] for p in by_kind(dev, "Service")["chain"]["spec"]["ports"]] == [8545]
    assert "chain-state" in by_kind(dev, "PersistentVolumeClaim")
    labels = chain["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] != "noosphere"  # outside the nodes' NetworkPolicy
    assert "chain" not in by_kind(base, "Deployment")


# ---- Kubernetes: what the manifests must say ---------------------------------------------------


def test_workloads_and_services(base: list[dict[str, Any]]) -> None:
    bootstrap = by_kind(base, "StatefulSet")["bootstrap"]
    assert bootstrap["spec"]["replicas"] == 1
    assert bootstrap["spec"]["serviceName"] == "bootstrap"
    claims = bootstrap["spec"]["volumeClaimTemplates"]
    mounts = bootstrap["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": claims[0]["metadata"]["name"], "mountPath": "/data"} in mounts
    services = by_kind(base, "Service")
    assert services["bootstrap"]["spec"]["clusterIP"] == "None"
    assert 4001 in {p["port"] for p in services["bootstrap"]["spec"]["ports"]}
    assert [p["port"] for p in services["rpc"]["spec"]["ports"]] == [7070]
    deployments = by_kind(base, "Deployment")
    assert deployments["orchestrator"]["spec"]["template"]["spec"]["serviceAccountName"] == (
        "orchestrator"
    )
    args = deployments["orchestrator"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "/app/examples/orchestrator/orchestrator-k8s.yaml" in args


def test_config_map_holds_node_settings_and_the_bootstrap_source(
    base: list[dict[str, Any]],
) -> None:
    from noosphere.node.config import ENV_PREFIX, NodeConfig

    data = by_kind(base, "ConfigMap")["noosphere-config"]["data"]
    settings = {ENV_PREFIX + f.upper() for f in NodeConfig.model_fields}
    launcher = {
        "NOOSPHERE_BOOTSTRAP_FROM",
        "NOOSPHERE_BOOTSTRAP_P2P_PORT",
        "NOOSPHERE_BOOTSTRAP_WAIT_S",
    }
    assert set(data) <= settings | launcher, set(data) - settings - launcher
    assert data["NOOSPHERE_HOST"] == "0.0.0.0"
    assert data["NOOSPHERE_BOOTSTRAP_FROM"].startswith("http://bootstrap-0.bootstrap:")
    for name, spec in pod_specs(base):
        refs = [e["configMapRef"]["name"] for e in spec["containers"][0].get("envFrom", [])]
        assert refs == ["noosphere-config"], name


def test_orchestrator_role_grants_exactly_the_worker_scale_subresource(
    base: list[dict[str, Any]],
) -> None:
    roles = by_kind(base, "Role")
    assert not by_kind(base, "ClusterRole") and not by_kind(base, "ClusterRoleBinding")
    (role,) = roles.values()
    assert role["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale"],
            "resourceNames": ["worker"],
            "verbs": ["get", "patch", "update"],
        }
    ]
    (binding,) = by_kind(base, "RoleBinding").values()
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "orchestrator", "namespace": NAMESPACE}
    ]
    # the scaled Deployment exists under that name; only the orchestrator mounts a token
    assert "worker" in by_kind(base, "Deployment")
    for name, spec in pod_specs(base):
        mounted = spec.get("automountServiceAccountToken", True)
        assert mounted == (spec["serviceAccountName"] == "orchestrator"), name


def test_every_container_has_resources_probes_and_a_locked_down_context(
    base: list[dict[str, Any]],
) -> None:
    specs = pod_specs(base)
    assert {n for n, _ in specs} == {
        "StatefulSet/bootstrap",
        "Deployment/worker",
        "Deployment/orchestrator",
    }
    for name, spec in specs:
        pod_ctx = spec["securityContext"]
        assert pod_ctx["runAsNonRoot"] is True and pod_ctx["runAsUser"] == 10001, name
        assert pod_ctx["fsGroupChangePolicy"] == "OnRootMismatch", name  # keeps node.key 0600
        assert pod_ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{c['name']}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), where
            if c in spec["containers"]:
                # the kubelet's own HTTP checks: no process (no Python) started in the pod
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    assert c[probe]["httpGet"] == {"path": "/healthz", "port": "rpc"}, where
            ctx = c["securityContext"]
            assert ctx["runAsNonRoot"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["capabilities"] == {"drop": ["ALL"]}, where
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert "/data" in mounts, where
            if c in spec["containers"]:
                assert {"/data", "/tmp"} <= mounts, where  # the only writable paths
        annotations = by_kind(base, name.split("/")[0])[name.split("/")[1]]["spec"]["template"][
            "metadata"
        ]["annotations"]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "7070",
            "prometheus.io/path": "/metrics",
        }, name


def test_disruption_budgets_and_network_policy(base: list[dict[str, Any]]) -> None:
    pdbs = by_kind(base, "PodDisruptionBudget")
    templates = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in base
        if d["kind"] in WORKLOAD_KINDS
    }
    for name in ("worker", "bootstrap"):
        selector = pdbs[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= templates[name].items(), name
    (policy,) = by_kind(base, "NetworkPolicy").values()
    node_labels = policy["spec"]["podSelector"]["matchLabels"]
    assert all(node_labels.items() <= labels.items() for labels in templates.values())
    rules = {
        (rule["ports"][0]["port"], json.dumps(rule["from"], sort_keys=True))
        for rule in policy["spec"]["ingress"]
    }
    assert (4001, json.dumps([{"podSelector": {"matchLabels": node_labels}}])) in rules
    assert (7070, json.dumps([{"podSelector": {}}])) in rules
    assert any(port == 7070 and "namespaceSelector" in src for port, src in rules)


def test_secrets_are_wired_and_optional(base: list[dict[str, Any]]) -> None:
    """The LLM key reaches every node from Secret noosphere-llm; the bootstrap and orchestrator
    homes can be seeded from identity Secrets; the contract addresses come from ConfigMap
    noosphere-ledger. All optional (the cluster starts without them) and none in the base: the
    operator creates them (docs/operations.md)."""
    assert not by_kind(base, "Secret")
    seeded = {
        "StatefulSet/bootstrap": "noosphere-bootstrap-identity",
        "Deployment/orchestrator": "noosphere-orchestrator-identity",
    }
    for name, spec in pod_specs(base):
        (node,) = spec["containers"]
        env = {e["name"]: e for e in node["env"]}
        ref = env["NOOSPHERE_LLM_API_KEY"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "noosphere-llm", "key": "api-key", "optional": True}, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["ledger"]["configMap"] == {"name": "noosphere-ledger", "optional": True}
        mounts = {m["mountPath"]: m for m in node["volumeMounts"]}
        assert mounts["/ledger/deployments"] == {
            "name": "ledger",
            "mountPath": "/ledger/deployments",
            "readOnly": True,
        }, name
        if name not in seeded:
            assert not spec.get("initContainers"), name  # workers: a fresh identity per pod
            continue
        secret = volumes["seed"]["secret"]
        assert secret["secretName"] == seeded[name] and secret["optional"] is True, name
        assert secret["defaultMode"] == 0o400, name
        (init,) = spec["initContainers"]
        script = init["command"][-1]
        assert "install -m 0600" in script and "[ ! -e /data/$f ]" in script, name  # no overwrite
        assert {m["mountPath"] for m in init["volumeMounts"]} == {"/data", "/seed"}, name
        assert not any(m["mountPath"] == "/seed" for m in node["volumeMounts"]), name


# ---- docker-compose.yml -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((ROOT / "tests/data/compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)
    errors = [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert not errors, errors
    # the schema really rejects what the specification does not allow
    broken = {**compose, "services": {"x": {"image": "a", "not_a_compose_key": 1}}}
    assert not validator.is_valid(broken)


def test_compose_services_volumes_and_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"chain", "ledger", "bootstrap", "worker", "orchestrator"}
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert service["healthcheck"]["test"][1] in ("busybox", "test"), name  # no interpreter
    for name in ("bootstrap", "worker", "orchestrator"):
        assert services[name]["healthcheck"]["test"][1:] == HEALTHZ, name
        assert services[name]["user"] == "10001:10001", name
        assert services[name]["cap_drop"] == ["ALL"], name
    assert {"chain-state", "bootstrap-home", "orchestrator-home"} <= set(compose["volumes"])
    assert "bootstrap-home:/data" in services["bootstrap"]["volumes"]
    assert "orchestrator-home:/data" in services["orchestrator"]["volumes"]
    # replicas must not share a home (one node.key = one peer id): no named volume for /data
    # on workers; the ledger's recorded addresses are shared read-only by every node
    assert services["worker"]["volumes"] == ["ledger-home:/ledger:ro"]
    for name in ("bootstrap", "worker", "orchestrator"):
        assert "ledger-home:/ledger:ro" in services[name]["volumes"], name
        assert services[name]["environment"]["NOOSPHERE_CHAIN_HOME"] == "/ledger", name
    ledger = services["ledger"]
    assert ledger["command"][:2] == ["ledger", "deploy"] and ledger["restart"] == "no"
    assert "ledger-home:/ledger" in ledger["volumes"]
    condition = services["bootstrap"]["depends_on"]["ledger"]["condition"]
    assert condition == "service_completed_successfully"
    # scaling must not collide on fixed host ports: "ADDR::7070" (an ephemeral host port)
    assert all("::" in str(p) for p in services["worker"].get("ports", []))
    # published on loopback unless the operator says otherwise (the dev chain's keys are public)
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("${NOOSPHERE_PUBLISH_ADDR:-127.0.0.1}:"), (name, port)
    # the orchestrator's local scaler starts worker processes in its container: bounded
    limits = services["orchestrator"]["deploy"]["resources"]["limits"]
    assert {"cpus", "memory"} <= set(limits)
    # the ledger job writes a fresh named volume: the image creates /ledger owned by 10001
    assert ledger["user"] == "10001:10001" and ledger["pull_policy"] == "never"
    assert services["worker"]["environment"]["NOOSPHERE_BOOTSTRAP_FROM"] == (
        "http://bootstrap:7070"
    )
    assert services["worker"]["depends_on"]["bootstrap"]["condition"] == "service_healthy"
    assert "/app/examples/orchestrator/orchestrator.yaml" in services["orchestrator"]["command"]
    chain = services["chain"]["command"]
    assert chain[chain.index("--state") + 1].startswith("/state/")
    assert chain[chain.index("--host") + 1] == "0.0.0.0"
    assert "chain-state:/state" in services["chain"]["volumes"]


def test_compose_environment_names_are_node_settings(compose: dict[str, Any]) -> None:
    from noosphere.node.config import ENV_PREFIX, NodeConfig

    settings = {ENV_PREFIX + f.upper() for f in NodeConfig.model_fields}
    extra = {"NOOSPHERE_BOOTSTRAP_FROM", "NOOSPHERE_BOOTSTRAP_P2P_PORT"}
    for name in ("bootstrap", "worker", "orchestrator"):
        env = set(compose["services"][name]["environment"])
        assert env <= settings | extra, (name, env - settings - extra)


# ---- Dockerfiles ------------------------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = [ln.strip() for ln in text.splitlines()]
    return [
        (ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "")
        for ln in lines
        if ln and not ln.startswith("#")
    ]


def build_args(steps: list[tuple[str, str]]) -> dict[str, str]:
    """ARG name -> default ("" when it has none or an empty one)."""
    pairs = [arg.partition("=") for op, arg in steps if op == "ARG"]
    return {name: default for name, _, default in pairs}


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    steps = instructions(ROOT / "Dockerfile")
    froms = [arg for op, arg in steps if op == "FROM"]
    assert len(froms) >= 2 and froms[0].endswith("AS builder"), froms
    assert any(op == "COPY" and arg.startswith("--from=builder") for op, arg in steps)
    runtime = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [arg for op, arg in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    setup = " ".join(arg for op, arg in runtime if op == "RUN")
    assert "--uid 10001" in setup
    # mount points of the compose volumes, owned by the node's user (a fresh named volume
    # takes the owner of the directory it is mounted on)
    assert "install -d -o 10001 -g 10001 -m 0700 /data" in setup
    assert "install -d -o 10001 -g 10001 -m 0755 /ledger" in setup
    health = [arg for op, arg in runtime if op == "HEALTHCHECK"]
    assert len(health) == 1 and json.dumps(HEALTHZ) in health[0], health
    assert "busybox" in setup  # the healthcheck's HTTP client
    assert ("ENTRYPOINT", '["noosphere"]') in runtime
    assert ("CMD", '["node", "start", "--home", "/data", "--host", "0.0.0.0"]') in runtime
    assert ("WORKDIR", "/home/noosphere") in runtime
    assert ("VOLUME", '["/data"]') in runtime
    assert ("EXPOSE", "4001 7070") in runtime


def test_dockerfiles_build_offline_or_from_mirrors_with_internet_defaults() -> None:
    """Base images and package sources are build arguments whose defaults are the internet
    build; no `# syntax=` line (BuildKit would fetch a frontend image from a registry)."""
    for path in (ROOT / "Dockerfile", ROOT / "deploy" / "anvil.Dockerfile"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert not re.match(r"#\s*syntax\s*=", first, re.I), path
    node = instructions(ROOT / "Dockerfile")
    args = build_args(node)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert args["APT_MIRROR"] == ""
    assert args["PIP_INDEX_URL"] == "https://pypi.org/simple"
    # torch==2.13.0+cpu lives on that index only
    assert args["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert [a for op, a in node if op == "FROM"] == [
        "${PYTHON_IMAGE} AS builder",
        "${PYTHON_IMAGE} AS runtime",
    ]
    assert ("COPY", "deploy/wheels/ /wheels/") in node  # the local package source
    builder = " ".join(a for op, a in node if op == "RUN")
    # a plain Debian base gets Python 3.11 with headers (fastecdsa compiles) from apt
    assert "python3.11 python3.11-venv python3.11-dev" in builder
    assert "libgmp-dev" in builder and 'echo "no-index = true"' in builder
    chain = instructions(ROOT / "deploy" / "anvil.Dockerfile")
    chain_args = build_args(chain)
    assert chain_args["NODE_IMAGE"] == "node:20-slim"
    assert chain_args["BASE_IMAGE"] == "debian:bookworm-slim"
    assert chain_args["NPM_CONFIG_REGISTRY"] == "https://registry.npmjs.org/"
    assert ("COPY", "deploy/npm/ /npm/") in chain
    for folder in ("wheels", "npm"):  # present in every checkout, contents ignored by git
        assert (ROOT / "deploy" / folder / "README.md").is_file()
    helper = (ROOT / "deploy" / "apt-install.sh").read_text(encoding="utf-8")
    assert "APT_MIRROR" in helper and "--no-install-recommends" in helper


def test_dockerignore_keeps_secrets_and_venv_out_but_not_the_package() -> None:
    patterns = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert {".git", ".venv", "node_modules", "**/node.key", "**/rpc.token"} <= set(patterns)
    for needed in ("noosphere", "examples", "deploy", "requirements.lock", "package-lock.json"):
        assert needed not in patterns and f"{needed}/" not in patterns


def test_chain_dockerfile_runs_the_pinned_anvil_as_non_root() -> None:
    steps = instructions(ROOT / "deploy" / "anvil.Dockerfile")
    assert any(op == "RUN" and "npm ci" in arg for op, arg in steps)
    assert any(op == "COPY" and arg.startswith("--from=anvil") for op, arg in steps)
    runtime = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    assert ("USER", "10002:10002") in runtime
    assert "install -d -o 10002 -g 10002 -m 0700 /state" in " ".join(
        a for op, a in runtime if op == "RUN"
    )
    (health,) = [a for op, a in runtime if op == "HEALTHCHECK"]
    assert '"busybox", "wget"' in health and "eth_blockNumber" in health
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    assert package["dependencies"]["@foundry-rs/anvil-linux-amd64"]
