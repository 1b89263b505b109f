"""One word per thing: a worker's project is its ``project`` (the UI keeps the
"Space ID" label). A rename: no data moves."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0002_worker_permissions"),
        ("workspaces", "0003_admin_labels"),
    ]

    operations = [
        # The index names the old field: drop it before the rename (SQLite
        # rebuilds the table on a rename and would recreate it), add it after.
        migrations.RemoveIndex(model_name="worker", name="worker_space_recent"),
        migrations.RenameField(
            model_name="worker", old_name="space", new_name="project"
        ),
        migrations.AddIndex(
            model_name="worker",
            index=models.Index(
                fields=["project", "-created_at", "-id"], name="worker_project_recent"
            ),
        ),
        migrations.AlterField(
            model_name="worker",
            name="project",
            field=models.ForeignKey(
                blank=True,
                help_text="The project whose quota it counts against (its Space ID).",
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="workers",
                to="workspaces.project",
            ),
        ),
    ]
