"""Settings for every command; see ``config/ivr.yaml`` for the keys and their defaults."""

from config.errors import ConfigError
from config.settings import Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
