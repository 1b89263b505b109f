"""Time indexes on the event log for the console's fleet-health charts,
which read one window (24 hours or 7 days) of events: by time alone, by
kind then time (transitions), and by actor then time (the reapers' events,
a small share of the log: 962 of 14,161 in a week of the 100k bench).

A plain CREATE INDEX: it blocks writes to the log while it builds, well
under a second for the benchmarks' 200k events (100k workers). A much
larger log is better indexed by hand with CREATE INDEX CONCURRENTLY under
these names before migrating (then ``migrate --fake`` this one); SQLite
(dev) has no concurrent build.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0004_worker_status_count"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="workerevent",
            index=models.Index(fields=["at"], name="worker_event_at"),
        ),
        migrations.AddIndex(
            model_name="workerevent",
            index=models.Index(fields=["kind", "at"], name="worker_event_kind_at"),
        ),
        migrations.AddIndex(
            model_name="workerevent",
            index=models.Index(
                fields=["actor_label", "at"], name="worker_event_actor_at"
            ),
        ),
    ]
