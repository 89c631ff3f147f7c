from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from .models import Dataset, FaceImage, FacePixels, NearDuplicateGroup, NearDuplicateMember, NearDuplicateRun


def _thumbnail(png, size: int = 48) -> str:
    if not png:
        return "-"
    return format_html('<img src="{}" width="{}" height="{}" alt="face" class="face-thumb">', png.url, size, size)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(FacePixels)
class FacePixelsAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "sha256", "created_at")
    search_fields = ("sha256",)
    readonly_fields = ("sha256", "png", "large_thumbnail", "created_at")

    @admin.display(description="face")
    def thumbnail(self, obj: FacePixels) -> str:
        return _thumbnail(obj.png)

    @admin.display(description="face (3x)")
    def large_thumbnail(self, obj: FacePixels) -> str:
        return _thumbnail(obj.png, 144)


@admin.register(FaceImage)
class FaceImageAdmin(admin.ModelAdmin):
    """Labels are read-only here: they change only through the face's review item (decide or reopen it under Review
    items, which links it from here), so every change is in the label history and an undo cannot overwrite it."""

    list_display = ("thumbnail", "id", "dataset", "split", "original_label", "current_label", "source_row", "excluded")
    list_filter = ("dataset", "split", "current_label", "original_label", "excluded")
    search_fields = ("=source_row", "source_name", "pixels__sha256")
    list_select_related = ("pixels", "dataset")
    readonly_fields = ("large_thumbnail", "pixels", "original_label", "current_label", "excluded", "ferplus_votes",
                       "source_row", "source_name", "created_at", "updated_at")
    list_per_page = 100

    @admin.display(description="face")
    def thumbnail(self, obj: FaceImage) -> str:
        return _thumbnail(obj.pixels.png)

    @admin.display(description="face (3x)")
    def large_thumbnail(self, obj: FaceImage) -> str:
        return _thumbnail(obj.pixels.png, 144)


@admin.register(NearDuplicateRun)
class NearDuplicateRunAdmin(admin.ModelAdmin):
    """Searches are started from the near-duplicates page, the API or ``manage.py find_near_duplicates``."""

    list_display = ("id", "status", "model_version", "faces_searched", "group_count", "cross_split_groups",
                    "conflicting_groups", "public_test_with_training", "flagged", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in NearDuplicateRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


class NearDuplicateMemberInline(admin.TabularInline):
    model = NearDuplicateMember
    readonly_fields = ("face", "split", "label")
    extra = 0
    can_delete = False


@admin.register(NearDuplicateGroup)
class NearDuplicateGroupAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "size", "cross_split", "conflicting")
    list_filter = ("cross_split", "conflicting")
    readonly_fields = ("run", "size", "splits", "cross_split", "conflicting", "pairs")
    inlines = [NearDuplicateMemberInline]
