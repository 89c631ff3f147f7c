# One image for web, workers and beat (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=ferplatform.settings.production
WORKDIR /app

# pg_dump/pg_restore for manage.py backup/restore (15: compose runs postgres:15); openssl for the first start's
# self-signed certificate (deploy/selfsigned-cert.sh).
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client openssl \
 && rm -rf /var/lib/apt/lists/*

# CUDA wheels of torch come from PyPI; the gpu worker gets the device through the NVIDIA container runtime.
COPY pyproject.toml ./
RUN pip install 'torch==2.14.1' 'torchvision==0.29.1'
COPY . .
RUN pip install -e . \
 && DJANGO_SETTINGS_MODULE=ferplatform.settings.production SECRET_KEY=collectstatic-only \
    STATIC_ROOT=/app/staticfiles python manage.py collectstatic --noinput \
 && useradd --create-home --uid 1000 ferplatform && mkdir -p /data/media /data/training /data/scoring /data/var/backups /app/var \
 && chown -R ferplatform /data /app/var

USER ferplatform
EXPOSE 8000
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "ferplatform.wsgi:application"]
