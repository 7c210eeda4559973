"""Typed errors of the library. Only the CLI maps them to exit codes and only the service to HTTP statuses."""
from __future__ import annotations


class CxnlpError(Exception):
    """Base class: every error the library raises on purpose carries a message meant for a person."""


class DataError(CxnlpError):
    """Input data cannot be read or does not have the expected shape."""


class InputTooLarge(DataError):
    """Input over a size limit set for it (a workbook with more cells than a service reads per upload):
    refused before it is read in full."""


class ModelError(CxnlpError):
    """A model folder is missing, incomplete, corrupted or incompatible."""


class ModelRootError(ModelError):
    """A request named a model folder outside the configured model root(s)."""


class ConfigError(CxnlpError):
    """A training recipe or a setting is invalid."""


class LedgerError(CxnlpError):
    """The root-cause ledger refused an operation."""


class LedgerBusyError(LedgerError):
    """The ledger is locked by another writer (a long ``classify --ledger`` run on SQLite) for longer
    than the busy timeout: nothing was changed, and the same operation can be tried again later."""


class NotFoundError(LedgerError):
    """A ledger record does not exist."""


class ConflictError(LedgerError):
    """A write collides with what the ledger holds: an id reused for a different text, or a record
    changed by someone else meanwhile."""
