# The control plane image: web (ASGI), Celery worker and beat share it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    NOTEBOOK_FLEET_VAR_DIR=/var/lib/notebook-fleet
WORKDIR /app

COPY pyproject.toml README.md ./
COPY config config
COPY accounts accounts
COPY resource_classes resource_classes
COPY workspaces workspaces
COPY workers workers
RUN pip install --no-cache-dir . && useradd --system --uid 10001 --home /app fleet \
    && mkdir -p "$NOTEBOOK_FLEET_VAR_DIR" && chown fleet "$NOTEBOOK_FLEET_VAR_DIR"
COPY manage.py ./
COPY templates templates
COPY static static
RUN SECRET_KEY=build-only-collectstatic python manage.py collectstatic --noinput -v0

USER fleet
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "8000"]
