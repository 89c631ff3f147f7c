from __future__ import annotations

from django.contrib import admin

from .models import Upload, UploadFace


class UploadFaceInline(admin.TabularInline):
    model = UploadFace
    fields = readonly_fields = ("index", "face", "box", "crop_box", "chunk")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "original_name", "status", "face_found", "content_type", "size")
    list_filter = ("status", "face_found", "content_type")
    search_fields = ("original_name", "user__username", "=id")
    list_select_related = ("user",)
    readonly_fields = [f.name for f in Upload._meta.fields]
    date_hierarchy = "created_at"
    inlines = [UploadFaceInline]

    def has_add_permission(self, request) -> bool:
        return False  # uploads come through the API or the upload page, which validate the file
