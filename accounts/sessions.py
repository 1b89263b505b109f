"""The session engine: Django's database sessions, read without the ORM.

Every signed-in request reads its session row first. Through the ORM that
read cost about 0.46 ms, of which the query itself about 0.18 (a primary
key lookup): a twentieth of a console page (bench/console_vs_jupyterhub.py).
This engine reads the row with one fixed statement and leaves the rest
(saving, expiry, cycling keys, the signed format) to Django's own
``SessionStore``; rows and cookies are the same, so switching either way
keeps everyone signed in.
"""

from functools import cache

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        model = self.model
        using = router.db_for_read(model)
        connection = connections[using]
        # As the backend stores it (SQLite: naive UTC text), as the ORM would.
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(_read_sql(model), [self.session_key, now])
            row = cursor.fetchone()
        if row is None:  # unknown or expired: as Django, a new key on save
            self._session_key = None
            return None
        return model(session_key=self.session_key, session_data=row[0])


@cache
def _read_sql(model) -> str:
    table = model._meta.db_table
    return (
        f"SELECT session_data FROM {table}"  # noqa: S608 - model metadata only
        " WHERE session_key = %s AND expire_date > %s"
    )
