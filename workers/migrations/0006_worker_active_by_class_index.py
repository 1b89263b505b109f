"""A partial index of the active workers by resource class, for the
console's resource-class usage: an index-only count per class (0.5 ms at
100k workers instead of 5 ms reading the table's rows).

Both columns are indexed already, so updates stay HOT-eligible; it holds
only active workers, so it grows with the active fleet, not with history.
A plain CREATE INDEX: it blocks writes to workers while it builds (well
under a second at 100k).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0005_workerevent_at_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="worker",
            index=models.Index(
                condition=models.Q(
                    ("status__in", ["busy", "ready", "starting", "stopping"])
                ),
                fields=["resource_class", "status"],
                name="worker_active_by_class",
            ),
        ),
    ]
