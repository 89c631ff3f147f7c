"""A password change revokes the user's API tokens.

Passwords change through Django's own code, not through a service of this project: the ``password_change`` and
password-reset views, the admin's password form, ``manage.py changepassword``, a shell's ``set_password``. All of them
end in ``user.save()``, so a pre_save hook that compares the new hash with the stored one is the one place that sees
every change (``user_create`` only makes new users, who have no tokens). Sessions need nothing: Django ties each one
to the password hash and drops it on the next request.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from .services import api_tokens_revoke_all


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts-password-change-seen")
def _password_change_seen(sender, instance, update_fields=None, **kwargs) -> None:
    instance._accounts_password_changed = False
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    # Django re-hashing the same password on login (a newer hasher or more iterations) saves only the password
    # through check_password's setter, which clears ``_password``: the same password, so the tokens stay.
    if update_fields is not None and set(update_fields) == {"password"} and instance._password is None:
        return
    stored = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._accounts_password_changed = stored is not None and stored != instance.password


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts-password-change-revokes-tokens")
def _password_change_revokes_tokens(sender, instance, **kwargs) -> None:
    if getattr(instance, "_accounts_password_changed", False):
        instance._accounts_password_changed = False
        api_tokens_revoke_all(user=instance)
