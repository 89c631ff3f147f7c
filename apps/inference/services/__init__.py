"""Writes of the inference app, one module per concern (import from the module, not from this package):

- ``registry``: checkpoints become model versions; the one way to activate a version (and roll back).
- ``predictions``: CAM-method and target validation, predictions and stored heatmaps, what is queued for workers.
- ``jobs``: a whole dataset split predicted as one tracked job.
"""
