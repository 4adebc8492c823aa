"""capi_audit: audit a browser pixel against a server-side Conversions API from your own logs."""

from capi_audit.config import AuditConfig, SourceSpec, load_config
from capi_audit.errors import AuditError, ConfigError, InputError
from capi_audit.workspace import Workspace

__all__ = [
    "AuditConfig",
    "AuditError",
    "ConfigError",
    "InputError",
    "SourceSpec",
    "Workspace",
    "load_config",
]
__version__ = "0.1.0"
