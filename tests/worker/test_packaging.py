"""The daemon's entry points: `celery -A worker.app`, the compose file, the dirsync commands."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

import config
from cli.commands import daemon

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_has_the_production_shape() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "migrate", "worker", "beat", "web", "flower"}
    assert services["migrate"]["command"] == ["dirsync", "db", "upgrade"]
    assert services["web"]["command"][:2] == ["dirsync", "serve"]
    for name in ("worker", "beat", "web"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["beat"]["deploy"]["replicas"] == 1


def test_compose_environment_is_valid_configuration() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {k: str(v).replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}", "pw")
           for k, v in compose["services"]["worker"]["environment"].items() if k != "DIRSYNC_CONFIG"}
    settings = config.parse({}, env)
    assert settings.worker.broker_url == "redis://redis:6379/0"
    assert settings.worker.metrics_port == 9808
    assert settings.worker.log_format == "json"


def test_daemon_commands_are_listed_for_the_cli() -> None:
    assert [c.name for c in daemon.COMMANDS] == ["worker", "beat", "status", "resume"]


def test_celery_finds_the_app_from_the_configuration(tmp_path: Path) -> None:
    cfg = tmp_path / "dirsync.toml"
    cfg.write_text('[worker]\nbroker_url = "redis://127.0.0.1:6379/15"\n'
                   '[directories.hr]\nkind = "file"\npath = "hr.json"\ncycle_minutes = 7\n')
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DIRSYNC_")},
           "DIRSYNC_CONFIG": str(cfg), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "celery", "-A", "worker.app", "report"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "'dirsync.sync_due'" in out.stdout
    assert "127.0.0.1:6379/15" in out.stdout  # the broker of the configuration named
    assert "task_acks_late: True" in out.stdout


def test_bad_configuration_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DIRSYNC_")},
           "DIRSYNC_CONFIG": str(tmp_path / "missing.toml"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "celery", "-A", "worker.app", "report"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"dirsync: config file {tmp_path / 'missing.toml'} does not exist"]


def test_the_image_copies_every_package_the_distribution_has() -> None:
    # A package left out of the Dockerfile installs nothing and breaks `dirsync` in the image.
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")}

    assert {name.rstrip("*") for name in packages} <= copied
