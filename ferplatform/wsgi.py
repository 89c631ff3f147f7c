from __future__ import annotations

from django.core.wsgi import get_wsgi_application

from ferplatform.startup import settings_or_exit

settings_or_exit()  # production settings unless DJANGO_SETTINGS_MODULE says otherwise
application = get_wsgi_application()
