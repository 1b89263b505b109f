"""Settings behave as documented: embedded mode without Redis, secure production."""

import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "DATABASE_URL", "DEBUG")
    }
    clean.update(
        NOTEBOOK_FLEET_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_mode_runs_tasks_in_process_without_redis(tmp_path):
    """No REDIS_URL: the in-memory layer and broker, and a real worker thread
    (not eager mode) that runs the task outside the caller."""
    result = run_python(
        """
        import threading, time, django
        django.setup()
        from django.conf import settings
        from config.celery import app
        from config.embedded import start_embedded_workers
        seen = []
        @app.task(name="tests.where")
        def where():
            seen.append(threading.current_thread().name)
        assert settings.EMBEDDED_MODE and settings.CELERY_BROKER_URL == "memory://"
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer")
        assert not app.conf.task_always_eager
        start_embedded_workers(beat=False)
        where.delay()
        deadline = time.time() + 20
        while not seen and time.time() < deadline:
            time.sleep(0.05)
        assert seen and seen[0] != threading.current_thread().name, seen
        print("ran in", seen[0])
        """,
        {},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ran in" in result.stdout


def test_a_secret_key_is_generated_once_into_var(tmp_path):
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    first = run_python(code, {}, tmp_path)
    second = run_python(code, {}, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 50
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    env = {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "fleet.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }
    clean = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SECURE_HTTPS")
    }
    clean.update(
        env,
        NOTEBOOK_FLEET_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_redis_url_switches_layer_and_broker(tmp_path):
    result = run_python(
        """
        import django; django.setup()
        from django.conf import settings
        print(settings.CHANNEL_LAYERS["default"]["BACKEND"], settings.CELERY_BROKER_URL)
        """,
        {"REDIS_URL": "redis://127.0.0.1:6379/5"},
        tmp_path,
    )
    assert result.stdout.split() == [
        "channels_redis.core.RedisChannelLayer",
        "redis://127.0.0.1:6379/5",
    ]
