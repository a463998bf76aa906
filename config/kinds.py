"""Which settings class each `kind` of directory uses."""

from config.directories import DirectorySettings, FileDirectorySettings
from config.entra import EntraDirectorySettings
from config.okta import OktaDirectorySettings
from config.scim import ScimDirectorySettings

KINDS: dict[str, type[DirectorySettings]] = {
    "file": FileDirectorySettings,
    "okta": OktaDirectorySettings,
    "entra": EntraDirectorySettings,
    "scim": ScimDirectorySettings,
}
