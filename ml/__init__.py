"""Framework-free machine learning for ferplatform: models, data, training, evaluation, Grad-CAM, label scoring.

Nothing in this package imports Django, Celery or ``apps``; the platform calls it with plain arrays and paths.
"""
