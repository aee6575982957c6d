"""The SSH transport, the one package that imports asyncssh: transport.py (the Transport, the SSH
edge other packages load), session.py (a command on a connection), config.py (ssh config and
routes), jump_pool.py (shared jump logins), error_mapping.py (asyncssh's login errors as fleet's),
host-key policy (hostkeys.py, host_key_policy.py) and kept connections in a background process
(persist/).

Importing asyncssh with a current cryptography prints about ten CryptographyDeprecationWarnings
(DSA, TripleDES: algorithms asyncssh still offers, never fleet's choice: fleet prefers ed25519,
curve25519 and AES-GCM) on every command, across the progress line and into CI logs. They say
nothing a user of fleet can act on, so that one category is silenced for warnings raised inside
asyncssh's own modules, before any of them is imported; any other warning still shows.
"""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"asyncssh(\..*)?$")
