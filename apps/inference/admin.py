"""Admin: model versions (upload a checkpoint, activate), predictions, explanations, split jobs; and actions on
datasets that run prediction and Grad-CAM over a split."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from apps.faces.admin import DatasetAdmin
from apps.faces.models import Dataset, Split

from .models import Explanation, InferenceJob, ModelVersion, Prediction
from .services.jobs import inference_job_enqueue
from .services.predictions import DEFAULT_METHODS
from .services.registry import (
    ModelVersionInvalid,
    model_version_activate,
    model_version_checkpoint_read,
    model_version_register,
)


class ModelVersionUploadForm(forms.ModelForm):
    """Add form: a checkpoint file is validated by loading it before anything is stored."""

    checkpoint_file = forms.FileField(help_text="A ferplatform checkpoint (.pt) written by the ml/ training code.")
    activate = forms.BooleanField(required=False, help_text="Make it the active version at once.")

    class Meta:
        model = ModelVersion
        fields = ["name"]

    def clean_checkpoint_file(self):
        upload = self.cleaned_data["checkpoint_file"]
        with tempfile.NamedTemporaryFile(suffix=".pt", delete=False) as tmp:
            for chunk in upload.chunks():
                tmp.write(chunk)
        self.checkpoint_path = Path(tmp.name)
        try:
            model_version_checkpoint_read(self.checkpoint_path)
        except ModelVersionInvalid as exc:
            self.checkpoint_path.unlink(missing_ok=True)
            raise forms.ValidationError(str(exc)) from None
        return upload


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "status", "arch", "accuracy", "macro_f1", "created_by", "created_at", "activated_at")
    list_filter = ("status", "arch")
    search_fields = ("name", "checkpoint_sha256")
    actions = ["activate_selected"]
    readonly_fields = ("arch", "status", "checkpoint", "checkpoint_sha256", "config", "metrics", "data_snapshot",
                       "created_by", "created_at", "activated_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ModelVersionUploadForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "checkpoint_file", "activate"]
        return ["name", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)
        try:
            return model_version_register(checkpoint_path=form.checkpoint_path, name=form.cleaned_data["name"],
                                          created_by=request.user, activate=form.cleaned_data["activate"])
        finally:
            form.checkpoint_path.unlink(missing_ok=True)

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])  # on add, save_form's service call stored the version already

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    @admin.display(description="accuracy")
    def accuracy(self, obj: ModelVersion):
        value = obj.metrics.get("val_accuracy", obj.metrics.get("accuracy"))
        return f"{value:.3f}" if isinstance(value, float) else "-"

    @admin.display(description="macro-F1")
    def macro_f1(self, obj: ModelVersion):
        value = obj.metrics.get("val_macro_f1", obj.metrics.get("macro_f1"))
        return f"{value:.3f}" if isinstance(value, float) else "-"

    @admin.action(description="Activate the selected version")
    def activate_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        try:
            version = model_version_activate(version=queryset.get(), actor=request.user)
        except ModelVersionInvalid as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"{version.name} (#{version.pk}) is now the active version.", messages.SUCCESS)


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("face", "model_version", "predicted_label", "confidence", "created_at")
    list_filter = ("model_version", "predicted_label")
    raw_id_fields = ("face",)
    list_select_related = ("model_version",)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Explanation)
class ExplanationAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "face", "model_version", "method", "target_label", "created_at")
    list_filter = ("model_version", "method", "target_label")
    raw_id_fields = ("face",)
    exclude = ("raw_map",)
    list_select_related = ("model_version",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="overlay")
    def thumbnail(self, obj: Explanation) -> str:
        return format_html('<img src="{}" width="96" height="96" alt="heatmap">', obj.overlay.url)


@admin.register(InferenceJob)
class InferenceJobAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "split", "methods", "model_version", "status", "progress", "created_at",
                    "finished_at")
    list_filter = ("status", "split")
    readonly_fields = [f.name for f in InferenceJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, obj: InferenceJob) -> str:
        return f"{obj.done}/{obj.total} ({obj.percent}%)"


def _split_action(split: str):
    def action(modeladmin, request, queryset):
        jobs = [inference_job_enqueue(dataset=dataset, split=split, methods=DEFAULT_METHODS, created_by=request.user)
                for dataset in queryset]
        modeladmin.message_user(
            request, f"Queued {len(jobs)} job(s) on {split} (GradCAM): follow them under Inference jobs.",
            messages.SUCCESS)

    action.__name__ = f"predict_{split.lower()}"
    return admin.action(description=f"Run predictions and Grad-CAM on {split}")(action)


# The dataset admin lives in apps.faces; extend it here so that faces does not depend on inference.
admin.site.unregister(Dataset)


@admin.register(Dataset)
class DatasetWithInferenceAdmin(DatasetAdmin):
    actions = [_split_action(s) for s in (Split.PUBLIC_TEST, Split.PRIVATE_TEST, Split.TRAINING, Split.UPLOAD)]
