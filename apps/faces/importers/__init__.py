"""Importers behind the ``import_*`` management commands: FER-2013 CSV, image folders, FER+ votes."""
