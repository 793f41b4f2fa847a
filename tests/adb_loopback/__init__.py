"""A loopback Android device for tests: an adbd on 127.0.0.1 that speaks the real ADB protocol.

`LoopbackAdbd` serves a `FakeDeviceRoot` (a temp directory standing in for the phone's
file system, with a fake `getprop`, cpufreq and thermal files). Shell commands run on
the host, inside that root. The pytest fixtures are in `tests.adb_loopback.fixtures`.
"""

from tests.adb_loopback.daemon import LoopbackAdbd
from tests.adb_loopback.device_root import DeviceLayout, FakeDeviceRoot

__all__ = ["DeviceLayout", "FakeDeviceRoot", "LoopbackAdbd"]
