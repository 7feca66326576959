"""The sandbox AWS: moto's server plus the RDS Blue/Green and RDS Proxy behaviours moto lacks.

Start it with `Sandbox(...).start()` (or as a context manager) and point AWS clients at `.endpoint`.
"""

from bot.sandbox.clock import Durations
from bot.sandbox.control import SandboxControl
from bot.sandbox.runtime import Sandbox

__all__ = ["Durations", "Sandbox", "SandboxControl"]
