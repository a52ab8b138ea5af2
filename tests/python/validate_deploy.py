"""Validates everything under deploy/ that is not a Strata config (those are parsed by Strata's
own loader in tests/config_files.rs), offline, from what tests/requirements.txt installs:

- every Kubernetes object under deploy/kubernetes/ against the Kubernetes OpenAPI schemas that
  kubernetes-validate bundles, in strict mode (an unknown or misspelt field fails), for the
  oldest and the newest Kubernetes version we support, and only stable API versions;
- deploy/docker-compose.yaml against the compose specification that check-jsonschema vendors;
- the Grafana provisioning file and the OpenTelemetry Collector config: they parse and have the
  shape their programs expect;
- that the pieces agree with each other: the collector's resolver names the ingesters' headless
  Service and its OTLP port, the queriers' `query.ingesters.dns` names a headless Service and
  its gRPC port, every Service selects some pod and targets ports those pods declare, every
  ConfigMap and Secret a pod uses exists, the collector ConfigMap carries collector.yaml
  verbatim, the compose file mounts files that exist, and the image exposes every port.

Prints one summary line per part and exits 1 with every problem found, each naming its file.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, VersionNotSupportedError

# The oldest Kubernetes we promise to run on, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
# Stable API groups only: no alpha or beta versions in what we ship.
STABLE_API = re.compile(r"^([a-z0-9.-]+/)?v[0-9]+$")
NAMESPACE = "strata"
COLLECTOR_EXPORTERS = ("load_balancing", "loadbalancing")  # new name, and the pre-0.153 one


class Problems:
    def __init__(self, root):
        self.root = root
        self.items = []

    def add(self, path, message):
        where = path.relative_to(self.root) if isinstance(path, Path) else path
        self.items.append(f"{where}: {message}")


def load_documents(path, problems):
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        problems.add(path, f"not valid YAML: {e}")
        return []


def name_of(obj):
    return f"{obj.get('kind', '?')} {obj.get('metadata', {}).get('name', '?')}"


def pod_spec(obj):
    if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
        return obj["spec"]["template"]["spec"], obj["spec"]["template"]["metadata"].get("labels", {})
    return None, None


# --- Kubernetes -----------------------------------------------------------------------------


def validate_kubernetes(root, problems):
    """Schema-checks every object; returns {directory: [(path, object)]} for the cross-checks."""
    by_dir = {}
    files = sorted((root / "deploy/kubernetes").rglob("*.yaml"))
    if not files:
        problems.add("deploy/kubernetes", "no manifests found")
    for path in files:
        for obj in load_documents(path, problems):
            by_dir.setdefault(path.parent, []).append((path, obj))
            if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
                problems.add(path, "a document without apiVersion and kind")
                continue
            if not STABLE_API.match(obj["apiVersion"]):
                problems.add(path, f"{name_of(obj)}: {obj['apiVersion']} is not a stable API version")
            for version in KUBERNETES_VERSIONS:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    field = ".".join(str(p) for p in e.path) or "(top level)"
                    problems.add(path, f"{name_of(obj)} (Kubernetes {version}): {field}: {e.message}")
                except SchemaNotFoundError as e:
                    problems.add(path, f"{name_of(obj)}: {e.message}")
                except VersionNotSupportedError as e:
                    problems.add(path, e.message)
            namespace = obj.get("metadata", {}).get("namespace")
            if obj["kind"] != "Namespace" and namespace != NAMESPACE:
                problems.add(path, f"{name_of(obj)}: namespace is {namespace!r}, not {NAMESPACE!r}")
    count = sum(len(objs) for objs in by_dir.values())
    print(f"kubernetes: {count} objects in {len(files)} files checked against Kubernetes "
          f"{' and '.join(v.rsplit('.', 1)[0] for v in KUBERNETES_VERSIONS)} (strict)")
    return by_dir


def cross_check_kubernetes(by_dir, problems):
    """Within one directory (one deployable unit) the objects must refer to each other rightly."""
    checks = 0
    for objects in by_dir.values():
        kinds = {}
        for path, obj in objects:
            kinds.setdefault(obj.get("kind"), {})[obj["metadata"]["name"]] = (path, obj)
        workloads = [(p, o) for p, o in objects if pod_spec(o)[0] is not None]
        for name, (path, service) in kinds.get("Service", {}).items():
            selector = service["spec"].get("selector", {})
            pods = [(p, o) for p, o in workloads
                    if selector and all(pod_spec(o)[1].get(k) == v for k, v in selector.items())]
            checks += 1
            if not pods:
                problems.add(path, f"Service {name}: its selector {selector} matches no pod template")
                continue
            declared = {port.get("name"): port["containerPort"]
                        for _, o in pods for c in pod_spec(o)[0]["containers"]
                        for port in c.get("ports", [])}
            for port in service["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                checks += 1
                if target not in declared and target not in declared.values():
                    problems.add(path, f"Service {name}: targetPort {target!r} is no port of its pods")
                elif isinstance(target, str) and declared[target] != port["port"]:
                    problems.add(path, f"Service {name}: port {port['port']} goes to {target} "
                                       f"({declared[target]}); keep them equal")
        for path, obj in workloads:
            spec, labels = pod_spec(obj)
            selector = obj["spec"]["selector"].get("matchLabels", {})
            checks += 1
            if any(labels.get(k) != v for k, v in selector.items()):
                problems.add(path, f"{name_of(obj)}: selector {selector} does not match its pods")
            if obj["kind"] == "StatefulSet":
                checks += 1
                if obj["spec"]["serviceName"] not in kinds.get("Service", {}):
                    problems.add(path, f"{name_of(obj)}: serviceName {obj['spec']['serviceName']} "
                                       "is not a Service here")
            for volume in spec.get("volumes", []):
                if "configMap" in volume:
                    checks += 1
                    if volume["configMap"]["name"] not in kinds.get("ConfigMap", {}):
                        problems.add(path, f"{name_of(obj)}: ConfigMap {volume['configMap']['name']} "
                                           "is not defined here")
            for container in spec["containers"]:
                for source in container.get("envFrom", []):
                    if "secretRef" in source:
                        checks += 1
                        if source["secretRef"]["name"] not in kinds.get("Secret", {}):
                            problems.add(path, f"{name_of(obj)}: Secret {source['secretRef']['name']} "
                                               "is not defined here")
    return checks


def headless_services(by_dir):
    found = {}
    for objects in by_dir.values():
        for path, obj in objects:
            if obj.get("kind") == "Service" and obj["spec"].get("clusterIP") == "None":
                found[f"{obj['metadata']['name']}.{obj['metadata']['namespace']}"] = (path, obj)
    return found


def service_has_port(service, number, name):
    return any(p["port"] == number and p.get("name") == name for p in service["spec"]["ports"])


def check_querier_dns(root, by_dir, problems):
    """The queriers must find the ingesters' gRPC API through a headless Service."""
    checks = 0
    headless = headless_services(by_dir)
    for objects in by_dir.values():
        for path, obj in objects:
            if obj.get("kind") != "ConfigMap" or "strata.yaml" not in obj.get("data", {}):
                continue
            config = yaml.safe_load(obj["data"]["strata.yaml"]) or {}
            dns = ((config.get("query") or {}).get("ingesters") or {}).get("dns")
            if dns is None:
                continue
            checks += 1
            host, _, port = dns.rpartition(":")
            match = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", host)
            if not match or f"{match[1]}.{match[2]}" not in headless:
                problems.add(path, f"query.ingesters.dns {dns}: not a headless Service in the manifests")
            elif not service_has_port(headless[f"{match[1]}.{match[2]}"][1], int(port), "grpc"):
                problems.add(path, f"query.ingesters.dns {dns}: that Service has no port grpc {port}")
    return checks


# --- OpenTelemetry Collector ---------------------------------------------------------------


def check_collector(root, by_dir, problems):
    path = root / "deploy/otel-collector/collector.yaml"
    text = path.read_text()
    docs = load_documents(path, problems)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        problems.add(path, "expected one YAML mapping")
        return 0
    config = docs[0]
    checks = 0
    # Every component a pipeline names is configured, and so is every extension in use.
    service = config.get("service", {})
    for pipeline, parts in service.get("pipelines", {}).items():
        for section in ("receivers", "processors", "exporters"):
            for component in parts.get(section, []):
                checks += 1
                if component not in (config.get(section) or {}):
                    problems.add(path, f"pipeline {pipeline} uses {section[:-1]} {component}, "
                                       "which is not configured")
    for extension in service.get("extensions", []):
        checks += 1
        if extension not in (config.get("extensions") or {}):
            problems.add(path, f"extension {extension} is used but not configured")
    # OTLP in on every interface, on the standard ports.
    protocols = ((config.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}
    for protocol, endpoint in (("grpc", "0.0.0.0:4317"), ("http", "0.0.0.0:4318")):
        checks += 1
        if (protocols.get(protocol) or {}).get("endpoint") != endpoint:
            problems.add(path, f"receivers.otlp.protocols.{protocol}.endpoint should be {endpoint}")
    # Spans routed by trace ID to the ingesters' headless Service on their OTLP/gRPC port.
    exporters = config.get("exporters") or {}
    names = [n for n in COLLECTOR_EXPORTERS if n in exporters]
    checks += 1
    if len(names) != 1:
        problems.add(path, f"expected one of the exporters {COLLECTOR_EXPORTERS}")
        return checks
    exporter = exporters[names[0]]
    if exporter.get("routing_key") != "traceID":
        problems.add(path, f"exporters.{names[0]}.routing_key should be traceID")
    dns = (exporter.get("resolver") or {}).get("dns") or {}
    hostname, port = dns.get("hostname", ""), int(dns.get("port", 4317))
    match = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", hostname)
    headless = headless_services(by_dir)
    checks += 1
    if not match or f"{match[1]}.{match[2]}" not in headless:
        problems.add(path, f"resolver.dns.hostname {hostname!r} is not a headless Service "
                           f"in the manifests (those are {sorted(headless)})")
    else:
        service_path, svc = headless[f"{match[1]}.{match[2]}"]
        if svc["spec"].get("publishNotReadyAddresses", False):
            problems.add(service_path, f"Service {match[1]}: the collector must see ready "
                                       "ingesters only (publishNotReadyAddresses: false)")
        if not service_has_port(svc, port, "otlp-grpc"):
            problems.add(path, f"resolver.dns.port {port} is not the otlp-grpc port of {match[1]}")
    # The Kubernetes ConfigMap carries this very file.
    carried = [obj for objects in by_dir.values() for _, obj in objects
               if obj.get("kind") == "ConfigMap" and "collector.yaml" in obj.get("data", {})]
    checks += 1
    if not carried:
        problems.add(path, "no ConfigMap in deploy/kubernetes carries collector.yaml")
    for obj in carried:
        if obj["data"]["collector.yaml"] != text:
            problems.add(path, f"ConfigMap {obj['metadata']['name']} differs from this file; "
                               "copy it there again")
    print(f"collector: {path.relative_to(root)} routes by {exporter.get('routing_key')} "
          f"to {hostname}:{port}")
    return checks


# --- docker compose, Grafana, the image ------------------------------------------------------


def check_compose(root, problems):
    path = root / "deploy/docker-compose.yaml"
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True)
    if result.returncode != 0:
        problems.add(path, "does not follow the compose specification:\n"
                     + (result.stdout + result.stderr).strip())
    docs = load_documents(path, problems)
    if not docs:
        return 0
    compose = docs[0]
    checks = 0
    services = compose.get("services", {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("."):
                checks += 1
                if not (path.parent / source).exists():
                    problems.add(path, f"service {name} mounts {source}, which does not exist")
        build = service.get("build")
        if isinstance(build, dict):
            checks += 1
            context = path.parent / build.get("context", ".")
            if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                problems.add(path, f"service {name}: no {build.get('dockerfile')} in {context}")
        for dependency in service.get("depends_on", []):
            checks += 1
            if dependency not in services:
                problems.add(path, f"service {name} depends on {dependency}, which is not defined")
    print(f"compose: {path.relative_to(root)} follows the compose specification "
          f"({len(services)} services)")
    return checks


def check_grafana(root, compose_services, problems):
    files = sorted((root / "deploy/grafana/provisioning/datasources").glob("*.yaml"))
    checks = 0
    sources = 0
    for path in files:
        for doc in load_documents(path, problems):
            checks += 1
            if doc.get("apiVersion") != 1:
                problems.add(path, "apiVersion should be 1")
            for source in doc.get("datasources", []):
                sources += 1
                for key in ("name", "type", "uid", "url"):
                    if not source.get(key):
                        problems.add(path, f"data source without {key}")
                if source.get("type") != "tempo":
                    problems.add(path, f"data source {source.get('name')}: type should be tempo")
                match = re.fullmatch(r"http://([a-z0-9-]+):3200", source.get("url", ""))
                if not match or match[1] not in compose_services:
                    problems.add(path, f"data source {source.get('name')}: url {source.get('url')} "
                                       "is not a compose service on port 3200")
    if sources == 0:
        problems.add("deploy/grafana/provisioning/datasources", "no data source provisioned")
    print(f"grafana: {sources} data source(s) in {len(files)} provisioning file(s)")
    return checks


def check_image(root, by_dir, problems):
    path = root / "deploy/Dockerfile"
    text = path.read_text()
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for p in line.split()}
    checks = 2
    if 'ENTRYPOINT ["strata"]' not in text:
        problems.add(path, 'expected ENTRYPOINT ["strata"]')
    users = re.findall(r"^USER (\S+)", text, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.add(path, "the image must run as a non-root USER")
    for objects in by_dir.values():
        for manifest, obj in objects:
            spec, _ = pod_spec(obj)
            for container in (spec or {}).get("containers", []):
                if not container["image"].startswith("strata:"):
                    continue
                for port in container.get("ports", []):
                    checks += 1
                    if port["containerPort"] not in exposed:
                        problems.add(manifest, f"{name_of(obj)}: port {port['containerPort']} "
                                               "is not EXPOSEd by deploy/Dockerfile")
    return checks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2],
                        help="repository root (default: the one holding this script)")
    root = parser.parse_args().root.resolve()
    problems = Problems(root)

    # Everything under deploy/ that claims to be YAML must at least be YAML.
    for path in sorted((root / "deploy").rglob("*.yaml")):
        load_documents(path, problems)

    by_dir = validate_kubernetes(root, problems)
    checks = cross_check_kubernetes(by_dir, problems)
    checks += check_querier_dns(root, by_dir, problems)
    checks += check_collector(root, by_dir, problems)
    checks += check_compose(root, problems)
    compose = (load_documents(root / "deploy/docker-compose.yaml", problems) or [{}])[0]
    checks += check_grafana(root, compose.get("services", {}), problems)
    checks += check_image(root, by_dir, problems)
    print(f"cross-checks: {checks}")

    if problems.items:
        print(f"validate_deploy: {len(problems.items)} problem(s):", file=sys.stderr)
        for item in problems.items:
            print(f"  {item}", file=sys.stderr)
        sys.exit(1)
    print("validate_deploy: OK")


if __name__ == "__main__":
    main()
