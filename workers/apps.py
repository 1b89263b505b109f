from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Notebook workers"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from workers.realtime import end_session_sockets

        # Logging out closes that session's live sockets in every process.
        user_logged_out.connect(
            end_session_sockets, dispatch_uid="workers.realtime.end_session_sockets"
        )
