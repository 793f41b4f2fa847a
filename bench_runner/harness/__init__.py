"""How an artifact is executed on a device and how its timings are read back.

`base` holds the Harness interface every harness implements; `agent.py` is the portable
Python agent (a standalone script, never imported); `python_agent` drives it on any device.
"""
