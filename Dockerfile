# One image for web, workers and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# CUDA wheels of torch come from PyPI; the gpu worker gets the device through the NVIDIA container runtime.
COPY pyproject.toml ./
RUN pip install 'torch==2.14.1' 'torchvision==0.29.1'
COPY . .
RUN pip install -e . \
 && DJANGO_SETTINGS_MODULE=ferplatform.settings.production SECRET_KEY=collectstatic-only \
    STATIC_ROOT=/app/staticfiles python manage.py collectstatic --noinput \
 && useradd --create-home --uid 1000 ferplatform && mkdir -p /data/media /app/var \
 && chown -R ferplatform /data/media /app/var

USER ferplatform
EXPOSE 8000
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "ferplatform.wsgi:application"]
