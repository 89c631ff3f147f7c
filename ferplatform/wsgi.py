from __future__ import annotations

from django.core.wsgi import get_wsgi_application

from ferplatform.startup import settings_or_exit

settings_or_exit()  # production settings unless DJANGO_SETTINGS_MODULE says otherwise
application = get_wsgi_application()

# Services send tasks by name (apps.core.work): register them all now, in one thread, not in the first requests.
from ferplatform.celery import app as celery_app  # noqa: E402

celery_app.loader.import_default_modules()
