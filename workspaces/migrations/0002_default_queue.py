from django.db import migrations


def create_default_queue(apps, schema_editor):
    SchedulingQueue = apps.get_model("workspaces", "SchedulingQueue")
    if not SchedulingQueue.objects.filter(is_default=True).exists():
        SchedulingQueue.objects.create(
            name="default", display_name="Default", priority=0, is_default=True
        )


class Migration(migrations.Migration):
    dependencies = [("workspaces", "0001_initial")]
    operations = [migrations.RunPython(create_default_queue, migrations.RunPython.noop)]
