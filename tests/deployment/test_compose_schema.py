"""docker-compose.yaml is checked without a Docker engine: it parses, anchors resolve, and everything a
service refers to (services, volumes, host paths, variables, host names, the image's Dockerfile) exists."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deployment.targets import ROOT

COMPOSE = ROOT / "docker-compose.yaml"
DOCS = ROOT / "docs" / "deployment.md"
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}
REQUIRED_SERVICES = AIRFLOW_SERVICES | {"postgres", "redis", "sandbox"}
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}; `$${VAR}` is an escaped literal for the container's shell.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?])[^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _airflow_version_pin() -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith("apache-airflow=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError("requirements.txt does not pin apache-airflow")


def test_official_celery_layout_is_present(services):
    assert REQUIRED_SERVICES <= set(services), f"missing services: {REQUIRED_SERVICES - set(services)}"
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }


def test_airflow_commands_exist_in_the_installed_airflow_cli(services):
    from airflow.cli import cli_config

    known = {command.name for command in cli_config.core_commands}
    for name in AIRFLOW_SERVICES - {
        "airflow-init",
        "airflow-worker",
    }:  # celery comes from the image's provider
        assert services[name]["command"] in known, (
            f"{name}: `airflow {services[name]['command']}` does not exist"
        )


def test_common_anchor_is_merged_into_every_airflow_service(compose, services):
    common = compose["x-airflow-common"]
    for name in AIRFLOW_SERVICES | {"sandbox", "airflow-cli"}:
        service = services[name]
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert (
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            == common["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        )
        assert service["volumes"] == common["volumes"], name
        assert service["image"] == common["image"] and service["build"] == common["build"], name
        for dependency in ("postgres", "redis"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy", (name, dependency)


def test_depends_on_names_existing_services_without_cycles(services):
    graph = {}
    for name, service in services.items():
        depends = service.get("depends_on", {})
        names = list(depends) if isinstance(depends, dict) else list(depends)
        for dependency in names:
            assert dependency in services, f"{name} depends on unknown service {dependency!r}"
            assert dependency != name
            if isinstance(depends, dict):
                assert depends[dependency]["condition"] in {
                    "service_started",
                    "service_healthy",
                    "service_completed_successfully",
                }, (name, dependency)
                if depends[dependency]["condition"] == "service_healthy":
                    assert "healthcheck" in services[dependency], (
                        f"{name} waits for {dependency}'s healthcheck"
                    )
        graph[name] = names
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"depends_on cycle: {' -> '.join((*path, node))}"
        if node in done:
            return
        for nxt in graph[node]:
            visit(nxt, (*path, node))
        done.add(node)

    for node in graph:
        visit(node, ())
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert (
            services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        ), name


def test_volumes_are_declared_and_bind_mounts_exist_in_the_repo(compose, services):
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert target.startswith("/"), f"{name}: container path {target!r} must be absolute"
            if source.startswith((".", "/")):
                host = (ROOT / source).resolve()
                assert host.is_dir(), f"{name} mounts {source}, which does not exist in the repo"
                assert ROOT in host.parents or host == ROOT, f"{name} mounts {source} from outside the repo"
            else:
                assert source in declared, f"{name} uses volume {source!r}, not declared under volumes:"
                used.add(source)
    assert declared == used, f"declared but unused volumes: {declared - used}"
    mounts = {v.split(":")[0]: v.split(":")[1] for v in compose["x-airflow-common"]["volumes"]}
    assert mounts["./dags"] == "/opt/airflow/dags"
    assert mounts["./plugins"] == "/opt/airflow/plugins"
    assert mounts["./include"] == "/opt/airflow/include"
    pythonpath = compose["x-airflow-common"]["environment"]["PYTHONPATH"].split(":")
    assert {"/opt/airflow/plugins", "/opt/airflow/include"} <= set(pythonpath)


def test_every_interpolated_variable_has_a_default_and_is_documented():
    text = COMPOSE.read_text()
    found = INTERPOLATION.findall(text)
    assert found, "expected variables such as ${AIRFLOW_UID:-50000}"
    undocumented = set()
    for variable, modifier in found:
        assert modifier, f"${{{variable}}} has no default: `docker compose up` would warn and use ''"
        if variable not in DOCS.read_text():
            undocumented.add(variable)
    assert not undocumented, f"variables not described in {DOCS.relative_to(ROOT)}: {sorted(undocumented)}"
    # Any other `$` must be an escaped `$$` meant for the container's shell.
    stray = re.findall(r"(?<!\$)\$(?![{$])", text.replace("$$", ""))
    assert not stray, f"unescaped $ in docker-compose.yaml: {stray}"


def test_host_names_in_urls_are_services(compose, services):
    env = compose["x-airflow-common"]["environment"]
    for key in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    ):
        host = re.match(r"^[a-z0-9+]+://(?:[^@/]*@)?([^:/]+)", env[key])
        assert host, f"{key} is not a URL: {env[key]!r}"
        assert host.group(1) in services, f"{key} points at {host.group(1)!r}, which is not a service"
    api_port = env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].split(":")[2].split("/")[0]
    assert f"8080:{api_port}" in services["airflow-apiserver"]["ports"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")


def test_image_is_built_from_the_pinned_airflow_with_project_requirements(compose):
    build = compose["x-airflow-common"]["build"]
    context = ROOT / build["context"]
    dockerfile = context / build["dockerfile"]
    assert dockerfile.is_file(), f"{dockerfile} is missing"
    text = dockerfile.read_text()
    assert f"apache/airflow:{_airflow_version_pin()}-python3.11" in text
    copied = re.search(r"^COPY\s+(\S+)\s", text, re.MULTILINE)
    assert copied and (context / copied.group(1)).is_file(), (
        "the Dockerfile must COPY the project's requirements"
    )
    assert "-r " in text and "requirements.txt" in text


def test_sandbox_is_an_optional_profile_running_the_sandbox_package(services):
    sandbox = services["sandbox"]
    assert sandbox["profiles"] == ["sandbox"]
    assert sandbox["command"][:3] == ["python", "-m", "sandbox"]
    assert (ROOT / "include" / "sandbox" / "__main__.py").is_file(), (
        "python -m sandbox needs include/sandbox/__main__.py"
    )
    assert all("profiles" not in services[name] for name in REQUIRED_SERVICES - {"sandbox"})


def test_sandbox_command_runs_in_the_foreground_reachable_from_the_other_containers(services):
    from sandbox.__main__ import build_parser

    sandbox = services["sandbox"]
    args = build_parser().parse_args(sandbox["command"][3:])  # exits (SystemExit) on an unknown option
    assert (args.command, args.foreground) == ("start", True), (
        "the container's main process must be the world"
    )
    env = sandbox["environment"]
    assert env["SANDBOX_HOST"] == "0.0.0.0", (
        "listening on 127.0.0.1 only, the Airflow containers could not reach it"
    )
    assert env["SANDBOX_PUBLIC_HOST"] == "sandbox", (
        "the URLs in its connections must name the compose service"
    )
    home = env["SANDBOX_HOME"]
    assert any(volume.endswith(f":{home}") for volume in services["airflow-worker"]["volumes"]), (
        f"the workers must see {home} (connections file, the embedded warehouse's socket)"
    )


def test_connections_come_from_an_optional_env_file(compose):
    env_files = compose["x-airflow-common"]["env_file"]
    assert env_files == [{"path": ".env", "required": False}]
