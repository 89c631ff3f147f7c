"""Drop the plain-text API tokens of ``rest_framework.authtoken``, replaced by django-rest-knox's hashed ones.

The app is no longer installed, so nothing would ever read or delete its table again; left in place it would keep
every old token's secret at rest. Its migration records go too, so that installing the app again starts clean.
Clients get a new token from ``POST /api/auth/token/``.
"""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_role_groups")]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token", reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL("DELETE FROM django_migrations WHERE app = 'authtoken'", reverse_sql=migrations.RunSQL.noop),
    ]
