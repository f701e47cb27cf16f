"""Exceptions whose message is meant for the user: the CLI prints it and exits with status 2."""


class MotifScreenError(Exception):
    """Base class: a problem the user can fix, described in one sentence."""


class ConfigError(MotifScreenError):
    """A settings, db.json, launchpad or workflow file is missing or malformed."""


class DatabaseError(MotifScreenError):
    """MongoDB (real or embedded) cannot be reached or used."""


class StoreLockedError(DatabaseError):
    """Another process holds the embedded store; it cannot merge concurrent writers."""


class InputError(MotifScreenError):
    """A structure, range, filter or parameter given by the user is invalid."""


class ModelError(MotifScreenError):
    """A checkpoint is missing, corrupt or incompatible with this code."""
