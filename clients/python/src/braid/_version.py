"""The SDK's version, sent in ``Hello.sdk_version``."""

__version__ = "0.1.0"
