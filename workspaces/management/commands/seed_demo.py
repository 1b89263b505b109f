from django.core.management.base import BaseCommand

from workspaces.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo personas, classes, projects, workspaces and workers (idempotent)."

    def handle(self, *args, **options):
        passwords = seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in with:"))
        for username, password in passwords.items():
            self.stdout.write(f"  {username:8} {password}")
