"""Worker counts per (status, backend), kept by triggers, filled from COUNT(*).

Triggers rather than Python calls, because they see every writer in the
writer's own transaction: the transition service, launch, the seeds' and
factories' ``bulk_create``/``save``, the admin and raw SQL alike. One
statement-level trigger per operation folds all rows of a statement into
one upsert (a 2,000-row reaper chunk touches each counter row once), skips
zero deltas (a probe's health UPDATE takes no counter lock) and locks the
counter rows in (status, backend) order, so two transitions in opposite
directions cannot deadlock on them.

PostgreSQL only: SQLite (dev) rebuilds a table on most ALTERs and would
silently drop its triggers; readers count rows there instead.
"""

from django.db import migrations, models

CREATE = """
LOCK TABLE workers_worker IN SHARE ROW EXCLUSIVE MODE;
CREATE FUNCTION workers_worker_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO workers_workerstatuscount AS c (status, backend, n)
    SELECT status, backend, sum(delta) FROM (SELECT status, backend, 1 AS delta FROM new_rows) AS d
    GROUP BY status, backend HAVING sum(delta) <> 0
    ORDER BY status, backend
    ON CONFLICT (status, backend) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO workers_workerstatuscount AS c (status, backend, n)
    SELECT status, backend, sum(delta) FROM (SELECT status, backend, -1 AS delta FROM old_rows) AS d
    GROUP BY status, backend HAVING sum(delta) <> 0
    ORDER BY status, backend
    ON CONFLICT (status, backend) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO workers_workerstatuscount AS c (status, backend, n)
    SELECT status, backend, sum(delta) FROM (
      SELECT status, backend, 1 AS delta FROM new_rows
      UNION ALL SELECT status, backend, -1 AS delta FROM old_rows
    ) AS d
    GROUP BY status, backend HAVING sum(delta) <> 0
    ORDER BY status, backend
    ON CONFLICT (status, backend) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSE  -- TRUNCATE
    UPDATE workers_workerstatuscount SET n = 0 WHERE n <> 0;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER workers_worker_count_insert AFTER INSERT ON workers_worker
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION workers_worker_count();
CREATE TRIGGER workers_worker_count_update AFTER UPDATE ON workers_worker
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION workers_worker_count();
CREATE TRIGGER workers_worker_count_delete AFTER DELETE ON workers_worker
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION workers_worker_count();
CREATE TRIGGER workers_worker_count_truncate AFTER TRUNCATE ON workers_worker
  FOR EACH STATEMENT EXECUTE FUNCTION workers_worker_count();
-- Written under the lock above: no write can fall between count and trigger.
DELETE FROM workers_workerstatuscount;
INSERT INTO workers_workerstatuscount (status, backend, n)
SELECT status, backend, count(*) FROM workers_worker GROUP BY status, backend;
"""
DROP = """
DROP TRIGGER IF EXISTS workers_worker_count_insert ON workers_worker;
DROP TRIGGER IF EXISTS workers_worker_count_update ON workers_worker;
DROP TRIGGER IF EXISTS workers_worker_count_delete ON workers_worker;
DROP TRIGGER IF EXISTS workers_worker_count_truncate ON workers_worker;
DROP FUNCTION IF EXISTS workers_worker_count();
"""


def on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0003_worker_project"),
    ]

    operations = [
        migrations.CreateModel(
            name="WorkerStatusCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("starting", "Starting"),
                            ("ready", "Ready"),
                            ("busy", "Busy"),
                            ("stopping", "Stopping"),
                            ("stopped", "Stopped"),
                            ("failed", "Failed"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "backend",
                    models.CharField(
                        choices=[
                            ("local", "Local"),
                            ("docker", "Docker"),
                            ("kubernetes", "Kubernetes"),
                            ("external", "External"),
                        ],
                        max_length=16,
                    ),
                ),
                ("n", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("status", "backend"), name="worker_status_count_key"
                    )
                ],
            },
        ),
        migrations.RunPython(on_postgresql(CREATE), on_postgresql(DROP)),
    ]
