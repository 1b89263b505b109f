"""docker-compose.yml wires one image into web, worker and beat over
PostgreSQL and Redis, with health checks; it cannot run here, so we read it."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_it_has_the_services():
    assert set(compose()["services"]) == {"postgres", "redis", "web", "worker", "beat"}


def test_app_services_share_one_image_and_the_same_wiring():
    services = compose()["services"]
    for name in ("web", "worker", "beat"):
        service = services[name]
        assert service["build"] == "." and service["image"] == "notebook-fleet:latest"
        env = service["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgres://")
            and "@postgres:5432/" in env["DATABASE_URL"]
        )
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert "SECRET_KEY" in env
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_commands_start_what_each_service_is_for():
    services = compose()["services"]
    assert (
        "manage.py serve" in services["web"]["command"]
        and "migrate" in services["web"]["command"]
    )
    assert services["worker"]["command"].startswith("celery -A config worker")
    assert services["beat"]["command"].startswith("celery -A config beat")


def test_everything_long_running_has_a_health_check_and_volumes_persist():
    data = compose()
    for name in ("postgres", "redis", "web", "worker"):
        assert data["services"][name]["healthcheck"]["test"], name
    assert {"pgdata", "redisdata", "fleet-var"} <= set(data["volumes"])
    assert any("pgdata:" in v for v in data["services"]["postgres"]["volumes"])


def test_the_dockerfile_builds_the_app_as_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile and "USER fleet" in dockerfile
    assert "manage.py" in dockerfile and "HEALTHCHECK" in dockerfile
