"""The sandbox AWS: moto's server plus the RDS Blue/Green and RDS Proxy behaviours moto lacks.

Start it with `Sandbox(...).start()` (or as a context manager) and point AWS clients at `.endpoint`.
"""

from sandbox.aws.clock import Durations
from sandbox.aws.control import SandboxControl
from sandbox.aws.runtime import Sandbox

__all__ = ["Durations", "Sandbox", "SandboxControl"]
