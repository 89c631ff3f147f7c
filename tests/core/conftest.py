"""The real Celery worker fixture moved to tests/conftest.py so that every app's tests share one worker."""
